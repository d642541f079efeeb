"""Find PDQ-hashed rows near a hash, through the chunk index (:func:`hashes.pdq.chunk_probes`).

On PostgreSQL each chunk's probes go as one array (``b0 = ANY(%s) OR …``: sixteen parameters, not
272, which halves the Python time of a lookup, measured in ``bench/hash_lookup.py``) and the full
256-bit distance is computed in the query (``bit_count`` over the chunks' XOR), so only matches
leave the database; the lookup runs without parallel workers (their start-up alone costs more
than the lookup). Elsewhere (the embedded SQLite default) the probes are ``IN`` lists and the
candidates' distances are computed here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from django.conf import settings
from django.db import connections, transaction
from django.db.models import BooleanField, Q, QuerySet
from django.db.models.expressions import RawSQL

from hashes.models import HashEntry, PdqIndexed
from hashes.pdq import CHUNKS, MAX_INDEXED_DISTANCE, chunk_probes, chunks, hamming

Row = TypeVar("Row", bound=PdqIndexed)


@dataclass(frozen=True)
class Near(Generic[Row]):
    row: Row
    distance: int


def pdq_near(
    queryset: QuerySet[Row], pdq: str, max_distance: int | None = None, *, serial: bool = False
) -> list[Near[Row]]:
    """Rows of ``queryset`` whose hash is within ``max_distance`` bits of ``pdq`` (default
    ``VIGIL_PDQ_DISTANCE``; at most 31, what the index finds whole), nearest first.

    ``serial``: on PostgreSQL, plan the look-up without parallel workers (a look-up joined to
    other tables, which the planner may otherwise give two workers that cost more to start than the
    look-up itself); it takes a savepoint and two more statements, so a plain look-up, planned
    serially anyway, goes without."""
    max_distance = settings.VIGIL_PDQ_DISTANCE if max_distance is None else max_distance
    max_distance = min(max_distance, MAX_INDEXED_DISTANCE)
    if max_distance < 0:
        return []
    connection = connections[queryset.db]
    if connection.vendor == "postgresql":
        table = connection.ops.quote_name(queryset.model._meta.db_table)
        probes = " OR ".join(f"{table}.b{i} = ANY(%s::integer[])" for i in range(CHUNKS))
        index = RawSQL(f"({probes})", chunk_probes(pdq), output_field=BooleanField())
        sql = " + ".join(f"bit_count(({table}.b{i} # %s)::bit(16))" for i in range(CHUNKS))
        distance = RawSQL(sql, chunks(pdq))  # integers only, as parameters
        rows = queryset.filter(index).annotate(pdq_distance=distance).filter(pdq_distance__lte=max_distance)
        if not serial:
            return _nearest_first([Near(row, row.pdq_distance) for row in rows])
        with transaction.atomic(using=queryset.db), connection.cursor() as cursor:
            # No parallel workers: starting them costs more than the lookup (a 1,000,000-row
            # UploadHash lookup joined to uploads: 8 ms of work, 40 ms with two workers started).
            cursor.execute(
                "SELECT current_setting('max_parallel_workers_per_gather'),"
                " set_config('max_parallel_workers_per_gather', '0', true)"
            )
            previous = cursor.fetchone()[0]
            found = [Near(row, row.pdq_distance) for row in rows]
            # For the rest of a caller's transaction, as it was (on an error the savepoint's
            # rollback restores it).
            cursor.execute("SELECT set_config('max_parallel_workers_per_gather', %s, true)", [previous])
    else:
        index = Q()
        for position, values in enumerate(chunk_probes(pdq)):
            index |= Q(**{f"b{position}__in": values})
        candidates = queryset.filter(index)
        found = [Near(row, d) for row in candidates if (d := hamming(pdq, row.pdq)) <= max_distance]
    return _nearest_first(found)


def _nearest_first(found: list[Near[Row]]) -> list[Near[Row]]:
    return sorted(found, key=lambda near: (near.distance, near.row.pk))


def list_matches(pdq: str, max_distance: int | None = None) -> list[Near[HashEntry]]:
    """Entries of enabled hash lists near ``pdq``, nearest first, each with its list."""
    entries = HashEntry.objects.filter(hash_list__enabled=True).select_related("hash_list")
    return pdq_near(entries, pdq, max_distance)
