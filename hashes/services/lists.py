"""Hash lists: create one, import a file into it, export it, and export the hashes of pictures
Vigil's moderators rejected, so a platform can share them.

An import is all or nothing: a file with any bad line is refused whole, with the first
:data:`ERRORS_SHOWN` line errors, and nothing of it is stored (the rows written before the first
error are rolled back with the transaction). Whoever runs it fixes the file and runs it again; an
import that half happened would leave them guessing which lines are in.
"""

from __future__ import annotations

import codecs
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max, OuterRef, Subquery

from hashes.formats import FORMATS, ExportRow, HashRow, LineError, lines_write, rows_parse
from hashes.models import HashEntry, HashList, UploadHash, chunk_fields
from moderation.models import Change, Upload
from moderation.services.categories import category_keys
from moderation.services.changes import change_record

BATCH_SIZE = 5000
ERRORS_SHOWN = 20


class HashFileRefused(ValueError):
    """The file was not imported; ``errors`` are the first :data:`ERRORS_SHOWN` bad lines and
    ``error_count`` how many there were in all. ``str(exc)`` says it in one message."""

    def __init__(self, errors: list[LineError], error_count: int, *, message: str = "") -> None:
        self.errors = errors
        self.error_count = error_count
        if not message:
            more = f" (the first {len(errors)} shown)" if error_count > len(errors) else ""
            message = (
                f"Nothing was imported: {error_count} bad line{'s' if error_count != 1 else ''}{more}. "
                + "; ".join(str(e) for e in errors)
            )
        super().__init__(message)


@dataclass(frozen=True)
class ImportCounts:
    added: int
    already_present: int  # in the list before this import
    repeated: int  # a hash the file had already given, on an earlier line

    @property
    def lines(self) -> int:
        return self.added + self.already_present + self.repeated


def hash_list_create(
    *,
    name: str,
    action: str = HashList.Action.QUEUE,
    category: str = "",
    description: str = "",
    enabled: bool = True,
    created_by: AbstractBaseUser | None = None,
) -> HashList:
    """A new, empty list. ``category`` must be one of the team's harmful categories (or empty):
    routing tags a rejection from the list with it, and the review pages show it."""
    name = name.strip()
    if not name:
        raise ValidationError("A hash list needs a name.")
    if len(name) > HashList._meta.get_field("name").max_length:
        raise ValidationError("The name is longer than 100 characters.")
    if action not in HashList.Action.values:
        raise ValidationError(f"Unknown action {action!r}: one of {', '.join(HashList.Action.values)}.")
    if category and category not in (keys := category_keys()):
        raise ValidationError(f"Unknown category {category!r}: one of {', '.join(keys)}.")
    if HashList.objects.filter(name=name).exists():
        raise ValidationError(f"A hash list named {name!r} exists already.")
    with transaction.atomic():
        hash_list = HashList.objects.create(
            name=name, action=action, category=category, description=description, enabled=enabled, created_by=created_by
        )
        hash_list_change_record(hash_list=hash_list, what="created", actor=created_by)
    return hash_list


def hash_list_change_record(*, hash_list: HashList, what: str, actor: AbstractBaseUser | None = None) -> Change:
    """Put a change to a hash list in the change log (kind policy, action ``hash_list``): a list
    acts on uploads as a policy does, so admins see the change in the banner and platforms hear of
    it (``policy.changed``). Call inside the transaction that made the change."""
    state = f"{hash_list.get_action_display().lower()}{'' if hash_list.enabled else ', disabled'}"
    if hash_list.category:
        state += f", category {hash_list.category}"
    return change_record(
        kind=Change.Kind.POLICY,
        action=Change.Action.HASH_LIST,
        summary=f"Hash list \u201c{hash_list.name}\u201d {what} ({state})",
        actor=actor,
    )


def text_lines(data: str | bytes | IO | Iterable[str]) -> Iterator[str]:
    """The lines of a file's content, decoded as UTF-8 (a byte-order mark is dropped), read as they
    are needed: a stream is never read whole. Raises :class:`HashFileRefused` on bytes that are
    not UTF-8."""
    if isinstance(data, bytes):
        data = io.BytesIO(data)
    if isinstance(data, str):
        yield from io.StringIO(data.removeprefix("\ufeff"), newline=None)
        return
    first = True
    decoder = None
    for number, chunk in enumerate(data, start=1):
        if isinstance(chunk, bytes):
            decoder = decoder or codecs.getincrementaldecoder("utf-8-sig")()
            try:
                line = decoder.decode(chunk)
            except UnicodeDecodeError:
                error = LineError(number, "not UTF-8 text")
                raise HashFileRefused([error], 1, message=f"Nothing was imported: {error}.") from None
        else:
            line = chunk.removeprefix("\ufeff") if first else chunk
        first = False
        yield line


def hash_list_import(
    *,
    hash_list: HashList,
    data: str | bytes | IO | Iterable[str],
    fmt: str = "auto",
    batch_size: int = BATCH_SIZE,
    actor: AbstractBaseUser | None = None,
) -> ImportCounts:
    """Add the hashes of a file (``data``: its text, bytes, an open file or lines) to
    ``hash_list``, in batches of ``batch_size``; hashes the list holds already are left as they
    are (their labels too).

    All or nothing: any bad line raises :class:`HashFileRefused` and nothing is stored. The list's
    row is locked for the import, so two imports into one list run one after the other."""
    if fmt not in (*FORMATS, "auto"):
        raise ValidationError(f"Unknown format {fmt!r}: one of auto, {', '.join(FORMATS)}.")
    errors: list[LineError] = []
    error_count = 0
    added = present = repeated = 0
    with transaction.atomic():
        HashList.objects.select_for_update().filter(pk=hash_list.pk).first()
        # Entries with a larger id than this were written by this import: a hash found among them
        # repeats an earlier line of the file, rather than being in the list before.
        before = HashEntry.objects.aggregate(last=Max("id"))["last"] or 0
        batch: dict[str, HashRow] = {}
        for row in rows_parse(text_lines(data), fmt):
            if isinstance(row, LineError):
                error_count += 1
                if len(errors) < ERRORS_SHOWN:
                    errors.append(row)
                continue
            if error_count:
                continue  # nothing will be stored; keep reading only to report every bad line
            if row.pdq in batch:
                repeated += 1
                continue
            batch[row.pdq] = row
            if len(batch) >= batch_size:
                counts = _batch_store(hash_list, batch, before)
                added, present, repeated = added + counts[0], present + counts[1], repeated + counts[2]
                batch = {}
        if error_count:
            transaction.set_rollback(True)
        elif batch:
            counts = _batch_store(hash_list, batch, before)
            added, present, repeated = added + counts[0], present + counts[1], repeated + counts[2]
        if added and not error_count:
            hash_list_change_record(hash_list=hash_list, what=f"took {added} new hashes from a file", actor=actor)
    if error_count:
        raise HashFileRefused(errors, error_count)
    return ImportCounts(added=added, already_present=present, repeated=repeated)


def _batch_store(hash_list: HashList, batch: dict[str, HashRow], before: int) -> tuple[int, int, int]:
    """Store the batch's new hashes; returns (added, in the list before, repeated from the file)."""
    existing = dict(HashEntry.objects.filter(hash_list=hash_list, pdq__in=list(batch)).values_list("pdq", "id"))
    HashEntry.objects.bulk_create(
        [
            HashEntry(hash_list=hash_list, pdq=pdq, labels=row.labels, source_id=row.source_id, **chunk_fields(pdq))
            for pdq, row in batch.items()
            if pdq not in existing
        ],
        batch_size=1000,
    )
    repeated = sum(1 for entry_id in existing.values() if entry_id > before)
    return len(batch) - len(existing), len(existing) - repeated, repeated


def hash_list_export(*, hash_list: HashList, fmt: str) -> Iterator[str]:
    """The list's hashes in ``fmt`` (``pdq`` or ``hma``), oldest first, one line each, read from
    the database a few thousand at a time. In ``hma`` the indicator id is the one the hash came
    with, else the entry's own id."""
    _check_format(fmt)
    entries = (
        HashEntry.objects.filter(hash_list=hash_list)
        .order_by("id")
        .values_list("id", "pdq", "labels", "source_id", "added_at")
        .iterator(chunk_size=BATCH_SIZE)
    )
    rows = (ExportRow(pdq, labels, source_id or str(pk), added_at) for pk, pdq, labels, source_id, added_at in entries)
    return lines_write(rows, fmt)


def own_rejections_export(*, fmt: str) -> Iterator[str]:
    """The PDQ hashes of pictures Vigil's moderators rejected, to share with other platforms: every
    hashed frame (of quality ``VIGIL_PDQ_MIN_QUALITY`` or better) of an upload whose standing
    decision is a moderator's reject, each hash once. Labels: the reject's category; added_on:
    when it was decided; indicator id: Vigil's id of the frame's hash (never the upload's id)."""
    _check_format(fmt)
    from reviews.models import Decision, ReviewRound

    standing = Decision.objects.filter(
        upload=OuterRef("upload"), round__status=ReviewRound.Status.DECIDED, label=Decision.Label.HARMFUL
    ).order_by("-created_at", "-id")
    hashes = (
        UploadHash.objects.filter(
            quality__gte=settings.VIGIL_PDQ_MIN_QUALITY,
            upload__status=Upload.Status.REJECTED,
            upload__decided_by=Upload.DecidedBy.HUMAN,
        )
        .annotate(category=Subquery(standing.values("category")[:1]))
        .annotate(decided_at=Subquery(standing.values("created_at")[:1]))
        .order_by("pdq", "-decided_at", "id")
        .values_list("id", "pdq", "category", "decided_at")
        .iterator(chunk_size=BATCH_SIZE)
    )
    return lines_write(_first_of_each_hash(hashes), fmt)


def _first_of_each_hash(rows: Iterable[tuple]) -> Iterator[ExportRow]:
    previous = None
    for pk, pdq, category, decided_at in rows:
        if pdq != previous:
            previous = pdq
            yield ExportRow(pdq, category or "", str(pk), decided_at)


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise ValidationError(f"Unknown format {fmt!r}: one of {', '.join(FORMATS)}.")


def hash_list_delete(*, hash_list: HashList, actor: AbstractBaseUser | None = None) -> int:
    """Delete a list and its entries, a batch at a time (Django's cascade would load a
    million-entry list whole); the matches it made stay, naming it. Returns the entries deleted."""
    from hashes.models import HashMatch

    deleted = 0
    with transaction.atomic():
        HashMatch.objects.filter(hash_list=hash_list).update(hash_list=None, entry=None)
        while ids := list(HashEntry.objects.filter(hash_list=hash_list).values_list("id", flat=True)[:BATCH_SIZE]):
            deleted += HashEntry.objects.filter(id__in=ids).delete()[1].get(HashEntry._meta.label, 0)
        hash_list_change_record(hash_list=hash_list, what=f"deleted with its {deleted} hashes", actor=actor)
        hash_list.delete()
    return deleted
