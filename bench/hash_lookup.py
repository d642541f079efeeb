"""PDQ lookup at scale: ``hashes.selectors.list_matches`` against 1,000,000 list entries in PostgreSQL.

    python -m bench.hash_lookup [--hashes 1000000] [--data ../shared/datasets/realbench]

Creates (and drops) its own database, migrated as the app's migrations make it, and fills
``hashes_hashentry`` over a few hash lists with COPY: the table's secondary indexes and constraints
are dropped first and recreated afterwards from their own definitions, and the bench fails unless
the final indexes and constraints are exactly those the migrations made.

PDQ hashes of real pictures are not uniform random bits (neighbouring DCT coefficients agree,
crops and re-posts of one picture cluster), and the chunk index's cost depends on how the stored
chunks spread, so most rows are real: the PDQ hashes of realbench's photos (read in place) and
scikit-image's, of each photo's random crops, rescales and tone changes, and of all eight of
their rotations and mirror images (``pdqhash.compute_dihedral``). The rest are random hashes of
weight 128, like a PDQ hash (thresholded at its median). A tenth of realbench is held back, for
queries of photos that were never stored.

Times, warm, each query through ``list_matches`` (the ORM, rows materialised):

- stored hashes (real and random) with 0–31 random bits flipped: each must be found;
- realbench photos re-encoded (JPEG quality 35–75) and resized (55–90 %): their stored original;
- random hashes and held-back photos: nothing stored (or a lookalike);

and, as the baseline in the same run, a full scan computing every row's distance in SQL. Every
query's result is checked against a brute-force scan in NumPy of the rows read back from the
table, the full-scan baseline's results against the index's; prints the table and index sizes,
the load time and a summary of ``EXPLAIN (ANALYZE, BUFFERS)`` of one lookup.

Then (``--uploads``, 0 to skip) as many uploads, one in ten queued, each with an ``UploadHash``, and
``pdq_near`` among the hashes of queued uploads only (a join, as the review queue's grouping
looks them up), checked the same way. Writes JSON (``--out``).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import re
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from hashes.pdq import bits_to_hex

ROOT = Path(__file__).resolve().parents[1]
REALBENCH = ROOT.parent / "shared" / "datasets" / "realbench"
SKIMAGE_PHOTOS = ("astronaut", "camera", "cat", "chelsea", "coffee", "coins", "horse", "moon", "rocket", "page")
HOLD_OUT_EVERY = 10  # every tenth realbench photo is never stored: queries of unseen photos
TABLE = "hashes_hashentry"


# --- hashes as numbers ---------------------------------------------------------------------------


def words(hexes: list[str]):
    """Hashes as an (n, 4) array of 64-bit words, for brute-force distances."""
    import numpy as np

    raw = bytes.fromhex("".join(hexes))
    return np.frombuffer(raw, dtype=">u8").astype(np.uint64).reshape(len(hexes), 4)


def random_balanced(rng, count: int) -> list[str]:
    """``count`` random hashes with exactly 128 bits set, as PDQ's median threshold makes them."""
    import numpy as np

    hexes: list[str] = []
    for start in range(0, count, 50_000):
        n = min(50_000, count - start)
        ones = np.argsort(rng.random((n, 256)), axis=1)[:, :128]
        bits = np.zeros((n, 256), dtype=np.uint8)
        np.put_along_axis(bits, ones, 1, axis=1)
        hexes.extend(bits_to_hex(bits))
    return hexes


def flip_bits(pdq: str, count: int, rng: random.Random) -> str:
    """``pdq`` with ``count`` distinct random bits flipped (exactly ``count`` bits away)."""
    value = int(pdq, 16)
    for bit in rng.sample(range(256), count):
        value ^= 1 << bit
    return f"{value:064x}"


def brute_force(matrix, pdq: str, max_distance: int):
    """Row positions of ``matrix`` (see :func:`words`) within ``max_distance`` bits of ``pdq``, and
    their distances: the answer every lookup is checked against."""
    import numpy as np

    distances = np.bitwise_count(matrix ^ words([pdq])[0]).sum(axis=1, dtype=np.int32)
    found = np.flatnonzero(distances <= max_distance)
    return found, distances[found]


def candidates(chunk_matrix, pdq: str) -> int:
    """How many rows the chunk index reads for ``pdq``: those within one bit of it in some chunk."""
    import numpy as np

    from hashes.pdq import chunks

    query = np.array(chunks(pdq), dtype=np.uint16)
    return int((np.bitwise_count(chunk_matrix ^ query) <= 1).any(axis=1).sum())


def backend_pid(connection) -> int | None:
    """The PostgreSQL server process serving ``connection``, when it runs on this machine (its CPU
    time is read from /proc: the lookup's cost apart from waiting for a core)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    return pid if os.path.exists(f"/proc/{pid}/stat") else None


def cpu_times(pid: int | None) -> tuple[float, float | None]:
    """(this process's CPU seconds, the server process's), the second ``None`` when unreadable."""
    server = None
    if pid is not None:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            server = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except OSError:
            pass
    return time.process_time(), server


def cpu_per_query(before: tuple, after: tuple, count: int) -> dict:
    client = (after[0] - before[0]) * 1000 / count
    server = None if before[1] is None or after[1] is None else (after[1] - before[1]) * 1000 / count
    return {"client_cpu_ms": client, "server_cpu_ms": server}


def summary(samples: list[float]) -> dict:
    ordered = sorted(samples)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]

    return {
        "runs": len(ordered),
        "p50_ms": statistics.median(ordered),
        "p95_ms": pick(0.95),
        "p99_ms": pick(0.99),
        "max_ms": ordered[-1],
    }


# --- real hashes ---------------------------------------------------------------------------------


def realbench_photos(root: Path) -> tuple[list[Path], list[Path]]:
    """(stored, held back): every tenth photo, in name order, is held back."""
    files = sorted(p for p in root.glob("*/*.jpg"))
    held = set(files[::HOLD_OUT_EVERY])
    return [p for p in files if p not in held], sorted(held)


def load_photo(source: str):
    from PIL import Image

    if source.startswith("skimage:"):
        import skimage.data

        return Image.fromarray(getattr(skimage.data, source.split(":", 1)[1])()).convert("RGB")
    with Image.open(source) as image:
        return image.convert("RGB")


def _photo_hashes(job: tuple[str, int, int]) -> tuple[str, str, list[str]]:
    """A photo's own PDQ hash (as the worker computes it) and the hashes of ``variants`` random
    variants of it, eight each (rotations and mirror images)."""
    import numpy as np
    import pdqhash
    from PIL import Image, ImageEnhance

    from hashes.pdq import pdq_compute

    source, variants, seed = job
    rng = random.Random(seed)
    try:
        image = load_photo(source)
    except Exception:  # an unreadable photo: skipped
        return source, "", []
    own = pdq_compute(image).hex
    hexes: list[str] = []
    width, height = image.size
    for _ in range(variants):
        keep_w, keep_h = rng.uniform(0.55, 1.0), rng.uniform(0.55, 1.0)
        w, h = max(16, round(width * keep_w)), max(16, round(height * keep_h))
        left, top = rng.randint(0, width - w), rng.randint(0, height - h)
        variant = image.crop((left, top, left + w, top + h))
        scale = rng.uniform(64, 256) / max(w, h)
        variant = variant.resize((max(8, round(w * scale)), max(8, round(h * scale))), Image.Resampling.BILINEAR)
        variant = ImageEnhance.Brightness(variant).enhance(rng.uniform(0.7, 1.3))
        variant = ImageEnhance.Contrast(variant).enhance(rng.uniform(0.7, 1.3))
        if rng.random() < 0.2:
            variant = variant.convert("L").convert("RGB")
        bits, _quality = pdqhash.compute_dihedral(np.asarray(variant))
        hexes.extend(bits_to_hex(bits))
    return source, own, hexes


def real_hashes(sources: list[str], variants: int, seed: int) -> tuple[dict[str, str], list[str]]:
    """({source: its own hash}, every hash of every source and its variants), cached under var/bench."""
    import hashlib
    from multiprocessing import Pool

    key = hashlib.sha256(json.dumps([sources, variants, seed, 1]).encode()).hexdigest()[:16]
    cache = ROOT / "var" / "bench" / f"hash_lookup_real_{key}.json"
    if cache.exists():
        cached = json.loads(cache.read_text())
        return cached["own"], cached["all"]
    own: dict[str, str] = {}
    everything: list[str] = []
    jobs = [(source, variants, seed + i) for i, source in enumerate(sources)]
    with Pool(os.cpu_count() or 1) as pool:
        for source, own_hash, hexes in pool.imap(_photo_hashes, jobs, chunksize=8):
            if own_hash:
                own[source] = own_hash
                everything.append(own_hash)
                everything.extend(hexes)
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps({"own": own, "all": everything}))
    return own, everything


def reencoded(source: str, rng: random.Random) -> str:
    """The PDQ hash of ``source`` resized to 55–90 % and saved as a JPEG of quality 35–75."""
    from PIL import Image

    from hashes.pdq import pdq_compute

    image = load_photo(source)
    scale = rng.uniform(0.55, 0.9)
    image = image.resize((max(8, round(image.width * scale)), max(8, round(image.height * scale))), Image.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=rng.randint(35, 75))
    buffer.seek(0)
    with Image.open(buffer) as again:
        return pdq_compute(again).hex


# --- the table -----------------------------------------------------------------------------------


def schema(cursor, table: str = TABLE) -> dict:
    """The table's indexes and constraints, by name, with their definitions."""
    cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s ORDER BY 1", [table])
    indexes = dict(cursor.fetchall())
    cursor.execute(
        "SELECT conname, contype, pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE conrelid = %s::regclass ORDER BY 1",
        [table],
    )
    constraints = {name: (kind, definition) for name, kind, definition in cursor.fetchall()}
    return {"indexes": indexes, "constraints": constraints}


ENTRY_COLUMNS = ["pdq", *(f"b{i}" for i in range(16)), "hash_list_id", "labels", "source_id", "added_at"]
UPLOAD_HASH_COLUMNS = ["pdq", *(f"b{i}" for i in range(16)), "upload_id", "frame", "quality"]


def entry_lines(rows: list[tuple[str, int, str]]) -> Iterator[str]:
    """COPY text of (pdq, list, source id) rows, in :data:`ENTRY_COLUMNS`."""
    from hashes.pdq import chunks

    for pdq, list_id, source_id in rows:
        chunk_text = "\t".join(map(str, chunks(pdq)))
        yield f"{pdq}\t{chunk_text}\t{list_id}\tbench\t{source_id}\t2026-12-07 00:00:00+00\n"


def upload_hash_lines(rows: list[tuple[str, str]]) -> Iterator[str]:
    """COPY text of (pdq, upload id) rows: frame 0, quality 80, in :data:`UPLOAD_HASH_COLUMNS`."""
    from hashes.pdq import chunks

    for pdq, upload_id in rows:
        yield f"{pdq}\t{chr(9).join(map(str, chunks(pdq)))}\t{upload_id}\t0\t80\n"


def copy_rows(cursor, table: str, columns: list[str], lines: Iterator[str]) -> None:
    """COPY text lines in, in batches."""
    with cursor.cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        batch: list[str] = []
        for line in lines:
            batch.append(line)
            if len(batch) >= 50_000:
                copy.write("".join(batch))
                batch.clear()
        if batch:
            copy.write("".join(batch))


def load(cursor, lines: Iterator[str], table: str = TABLE, columns: list[str] = ENTRY_COLUMNS) -> dict:
    """COPY ``lines`` into ``table`` with its secondary indexes and constraints off, then put back
    exactly what the migrations made (checked). Returns the seconds each step took."""
    before = schema(cursor, table)
    constraint_indexes = {name for name, (kind, _) in before["constraints"].items() if kind in "pu"}
    cursor.execute("SET synchronous_commit = off")
    cursor.execute("SET maintenance_work_mem = '256MB'")
    for name, (kind, _) in before["constraints"].items():
        if kind in "uf":
            cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    for name in before["indexes"]:
        if name not in constraint_indexes:
            cursor.execute(f'DROP INDEX "{name}"')
    timings = {}
    started = time.perf_counter()
    copy_rows(cursor, table, columns, lines)
    timings["copy_s"] = time.perf_counter() - started
    started = time.perf_counter()
    for name, definition in before["indexes"].items():
        if name not in constraint_indexes:
            cursor.execute(definition)
    for name, (kind, definition) in before["constraints"].items():
        if kind in "uf":
            cursor.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
    timings["indexes_s"] = time.perf_counter() - started
    started = time.perf_counter()
    cursor.execute(f"VACUUM ANALYZE {table}")
    timings["vacuum_analyze_s"] = time.perf_counter() - started
    after = schema(cursor, table)
    if after != before:
        raise SystemExit(f"the loaded table's indexes differ from the migrations':\n{before}\n{after}")
    timings["schema"] = {"indexes": len(after["indexes"]), "constraints": len(after["constraints"])}
    return timings


def distance_sql(pdq: str) -> tuple[str, list[int]]:
    from hashes.pdq import chunks

    return " + ".join(f"bit_count((e.b{i} # %s)::bit(16))" for i in range(16)), chunks(pdq)


def naive_scan(cursor, pdq: str, max_distance: int) -> list[tuple[int, int]]:
    """The baseline: every enabled list's row, its distance computed in SQL."""
    expression, params = distance_sql(pdq)
    cursor.execute(
        f"SELECT id, d FROM (SELECT e.id, {expression} AS d FROM {TABLE} e"
        " JOIN hashes_hashlist l ON l.id = e.hash_list_id WHERE l.enabled) s WHERE d <= %s",
        [*params, max_distance],
    )
    return sorted(cursor.fetchall())


class _Captured(Exception):
    pass


def lookup_sql(connection, pdq: str, lookup=None) -> tuple[str, tuple]:
    """The SQL and parameters ``lookup`` (``list_matches``) sends for ``pdq``, caught before it is run."""
    from hashes.selectors import list_matches

    lookup = lookup or list_matches
    captured = []

    def capture(execute, sql, params, many, context):
        if "bit_count" not in sql:  # the lookup's own settings
            return execute(sql, params, many, context)
        captured.append((sql, params))
        raise _Captured

    try:
        with connection.execute_wrapper(capture):
            lookup(pdq)
    except _Captured:
        pass
    return captured[0]


def explain(connection, sql: str, params) -> str:
    """``EXPLAIN (ANALYZE, BUFFERS)`` of a lookup's SQL, run as ``pdq_near`` runs it (no parallel workers)."""
    from django.db import transaction

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT set_config('max_parallel_workers_per_gather', '0', true)")
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


def explain_summary(plan: str) -> dict:
    """The facts of one lookup's plan that matter: how the candidates were found and what it read."""
    heap = re.search(r"Bitmap Heap Scan.*?actual time=[\d.]+\.\.[\d.]+ rows=(\d+)", plan)
    removed = re.search(r"Rows Removed by Filter: (\d+)", plan)
    buffers = re.search(r"Buffers: shared hit=(\d+)(?: read=(\d+))?", plan)
    execution = re.search(r"Execution Time: ([\d.]+) ms", plan)
    return {
        "join": next((node for node in ("Nested Loop", "Hash Join", "Merge Join") if node in plan), None),
        "bitmap_or": "BitmapOr" in plan,
        "bitmap_index_scans": plan.count("Bitmap Index Scan"),
        "distinct_indexes": len(set(re.findall(r"Bitmap Index Scan on (\S+)", plan))),
        "seq_scan": "Seq Scan on hashes_hashentry" in plan,
        "matches": int(heap.group(1)) if heap else None,
        "candidates_filtered_out": int(removed.group(1)) if removed else None,
        "buffers_hit": int(buffers.group(1)) if buffers else None,
        "buffers_read": int(buffers.group(2) or 0) if buffers else None,
        "execution_ms": float(execution.group(1)) if execution else None,
    }


# --- the run -------------------------------------------------------------------------------------


def build_queries(args, rng: random.Random, stored: list[str], real_count: int, own: dict, held: list[str]):
    """{set name: (query hashes, whether each must find something)}."""
    queries: dict[str, list[str]] = {}
    queries["stored real, 0-31 bits flipped"] = [
        flip_bits(stored[rng.randrange(real_count)], i % 32, rng) for i in range(args.queries)
    ]
    queries["stored random, 0-31 bits flipped"] = [
        flip_bits(stored[rng.randrange(real_count, len(stored))], i % 32, rng) for i in range(args.queries // 2)
    ]
    photos = rng.sample(sorted(own), min(args.photo_queries, len(own)))
    queries["photo re-encoded + resized"] = [reencoded(source, rng) for source in photos]
    queries["random (nothing stored)"] = random_balanced(_np_rng(args.seed + 1), args.queries)
    queries["held-back photos (unseen)"] = held[: args.photo_queries]
    return queries, photos


def upload_lookups(args, connection, stored: list[str], queries: dict[str, list[str]], rng: random.Random) -> dict:
    """``pdq_near`` among ``UploadHash`` rows of queued uploads only (a join): ``--uploads`` uploads,
    one in ten queued, each with a frame hash from ``stored`` (reshuffled)."""
    import numpy as np

    from accounts.roles import Role
    from accounts.services import user_create
    from hashes.models import UploadHash
    from hashes.selectors import pdq_near
    from moderation.models import Upload
    from moderation.services.policies import policy_current

    submitter = user_create(username="bench-hashes", role=Role.UPLOADER, password=None)
    report: dict = {"uploads": args.uploads, "queued_share": 0.1}
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO moderation_upload (id, submitter_id, external_id, source_url, original, display,
                original_filename, sha256, phash, format, width, height, frames, byte_size, metadata, status,
                decided_by, status_reason, policy_id, score_attempts, kind, lease_owner, lease_interruptions,
                created_at, routed_at, decided_at, updated_at)
            SELECT gen_random_uuid(), %s, '', '', 'originals/x/' || g || '.jpg', '', '',
                md5(g::text) || md5((g + 1)::text), substr(md5(g::text), 1, 16), 'JPEG', 1024, 768, 1, 200000,
                '{}', CASE WHEN g %% 10 = 0 THEN 'queued' ELSE 'approved' END,
                CASE WHEN g %% 10 = 0 THEN '' ELSE 'model' END, 'bench', %s, 1, 'image', '', 0, now(), now(),
                CASE WHEN g %% 10 = 0 THEN NULL ELSE now() END, now()
            FROM generate_series(1, %s) g
            """,
            [submitter.pk, policy_current().pk, args.uploads],
        )
        cursor.execute("VACUUM ANALYZE moderation_upload")
        cursor.execute("SELECT id FROM moderation_upload ORDER BY id")
        upload_ids = [str(row[0]) for row in cursor.fetchall()]
        hashes = rng.sample(stored, min(len(stored), len(upload_ids)))
        rows = list(zip(hashes, upload_ids[: len(hashes)], strict=True))
        report["load"] = load(cursor, upload_hash_lines(rows), "hashes_uploadhash", UPLOAD_HASH_COLUMNS)
        cursor.execute(
            "SELECT h.id, h.pdq FROM hashes_uploadhash h JOIN moderation_upload u ON u.id = h.upload_id"
            " WHERE u.status = 'queued'"
        )
        queued = cursor.fetchall()
    report["seconds"] = time.perf_counter() - started
    ids = np.array([row[0] for row in queued])
    matrix = words([row[1] for row in queued])
    queued_hashes = [row[1] for row in queued]
    query_sets = {
        "queued upload's hash, 0-31 bits flipped": [
            flip_bits(queued_hashes[rng.randrange(len(queued_hashes))], i % 32, rng) for i in range(args.queries)
        ],
        "random (nothing stored)": queries["random (nothing stored)"],
    }
    in_queue = UploadHash.objects.filter(upload__status=Upload.Status.QUEUED)
    for pdq in query_sets["random (nothing stored)"][:100]:  # warm, not measured
        pdq_near(in_queue, pdq, 31, serial=True)
    report["lookups"], report["mismatches"] = {}, 0
    for name, hexes in query_sets.items():
        samples, results = [], []
        for pdq in hexes:
            t = time.perf_counter()
            result = pdq_near(in_queue, pdq, 31, serial=True)
            samples.append((time.perf_counter() - t) * 1000)
            results.append(sorted((near.row.pk, near.distance) for near in result))
        for pdq, got in zip(hexes, results, strict=True):
            rows, distances = brute_force(matrix, pdq, 31)
            report["mismatches"] += got != sorted(zip(ids[rows].tolist(), distances.tolist(), strict=True))
        report["lookups"][name] = {**summary(samples), "queries_with_a_match": sum(1 for got in results if got)}
        print(f"upload hashes of queued uploads, {name}: {report['lookups'][name]}", flush=True)
    fresh = flip_bits(queued_hashes[rng.randrange(len(queued_hashes))], 20, rng)
    sql, params = lookup_sql(connection, fresh, lambda pdq: pdq_near(in_queue, pdq, 31, serial=True))
    report["explain_plan"] = explain(connection, sql, params)
    report["explain"] = explain_summary(report["explain_plan"])
    print(f"upload hashes, EXPLAIN (ANALYZE, BUFFERS) of one lookup: {report['explain']}", flush=True)
    return report


def _np_rng(seed: int):
    import numpy as np

    return np.random.default_rng(seed)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hashes", type=int, default=1_000_000)
    parser.add_argument("--real-share", type=float, default=0.6, help="share of rows from real photos")
    parser.add_argument("--lists", type=int, default=4)
    parser.add_argument("--queries", type=int, default=300, help="per set (half for the random-stored set)")
    parser.add_argument("--photo-queries", type=int, default=150)
    parser.add_argument("--naive-runs", type=int, default=5)
    parser.add_argument("--uploads", type=int, default=1_000_000, help="UploadHash rows for the join lookup; 0: none")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--data", default=str(REALBENCH))
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/vigil_bench_hashes")
    parser.add_argument("--out", default=str(ROOT / "var" / "bench" / "hash_lookup.json"))
    args = parser.parse_args()
    rng = random.Random(args.seed)
    report: dict = {"hashes": args.hashes, "lists": args.lists}

    # Real hashes: realbench (minus the held-back tenth) and scikit-image's photos, with variants.
    started = time.perf_counter()
    stored_photos, held_photos = realbench_photos(Path(args.data))
    sources = [str(p) for p in stored_photos] + [f"skimage:{name}" for name in SKIMAGE_PHOTOS]
    real_target = round(args.hashes * args.real_share)
    variants = max(1, -(-real_target // (8 * max(1, len(sources)))))  # ceil: eight hashes a variant
    own, real_all = real_hashes(sources, variants, args.seed)
    held_own, _ = real_hashes([str(p) for p in held_photos], 0, args.seed)
    real = list(dict.fromkeys(real_all))  # unique, in order
    rng.shuffle(real)
    keep_own = set(own.values())  # every photo's own hash is stored (the re-encoded queries look for it)
    real = [*dict.fromkeys(own.values()), *(h for h in real if h not in keep_own)][:real_target]
    random_part = [h for h in random_balanced(_np_rng(args.seed), args.hashes - len(real)) if h not in keep_own]
    stored = real + random_part
    report["corpus"] = {
        "real_photos": len(own),
        "variants_per_photo": variants,
        "real_hashes_computed": len(real_all),
        "real_hashes_unique": len(set(real_all)),
        "real_rows": len(real),
        "random_rows": len(random_part),
        "held_back_photos": len(held_own),
        "seconds": time.perf_counter() - started,
    }
    print(f"corpus: {report['corpus']}", flush=True)

    from bench.scratch import scratch_database

    with scratch_database(args.database_url):
        import numpy as np
        from django.db import connection

        from hashes.models import HashList
        from hashes.selectors import list_matches

        lists = [HashList.objects.create(name=f"bench list {i}", action="queue") for i in range(args.lists)]
        assignment = [lists[i % len(lists)].pk for i in range(len(stored))]
        rng.shuffle(assignment)
        rows = [(pdq, list_id, f"x{n}") for n, (pdq, list_id) in enumerate(zip(stored, assignment, strict=True))]
        with connection.cursor() as cursor:
            started = time.perf_counter()
            report["load"] = load(cursor, entry_lines(rows))
            report["load"]["total_s"] = time.perf_counter() - started
            print(f"load: {report['load']}", flush=True)
            cursor.execute(
                f"SELECT pg_relation_size('{TABLE}'), pg_indexes_size('{TABLE}'), pg_total_relation_size('{TABLE}')"
            )
            table, indexes, total = cursor.fetchone()
            cursor.execute(
                "SELECT sum(pg_relation_size(indexrelid)) FROM pg_index"
                f" WHERE indrelid = '{TABLE}'::regclass AND indexrelid::regclass::text ~ '_b[0-9]+_'"
            )
            chunk_indexes = cursor.fetchone()[0]
            report["size_mb"] = {
                "table": table / 2**20,
                "indexes": indexes / 2**20,
                "of_which_chunk_indexes": chunk_indexes / 2**20,
                "total": total / 2**20,
            }
            print(f"size MB: {report['size_mb']}", flush=True)
            cursor.execute("SELECT current_setting('server_version'), current_setting('shared_buffers')")
            report["postgresql"] = dict(zip(("version", "shared_buffers"), cursor.fetchone(), strict=True))
            cursor.execute(f"SELECT id, pdq FROM {TABLE}")
            read_back = cursor.fetchall()
        ids = np.array([row[0] for row in read_back])
        matrix = words([row[1] for row in read_back])
        chunk_matrix = np.frombuffer(bytes.fromhex("".join(row[1] for row in read_back)), dtype=">u2")
        chunk_matrix = chunk_matrix.astype(np.uint16).reshape(len(read_back), 16)
        del read_back
        real_count = len(real)
        queries, photos = build_queries(
            args, rng, stored, real_count, own, [held_own[str(p)] for p in held_photos if str(p) in held_own]
        )
        for warm in random_balanced(_np_rng(args.seed + 2), 100) + rng.sample(stored, 100):  # not measured
            list_matches(warm)

        max_distance = 31
        pid = backend_pid(connection)
        report["lookups"] = {}
        mismatches = []
        for name, hexes in queries.items():
            samples, results = [], []
            cpu = cpu_times(pid)
            for pdq in hexes:
                t = time.perf_counter()
                result = list_matches(pdq, max_distance)
                samples.append((time.perf_counter() - t) * 1000)
                results.append(sorted((near.row.pk, near.distance) for near in result))
            figures = {**summary(samples), **cpu_per_query(cpu, cpu_times(pid), len(hexes))}
            candidate_counts = []
            for pdq, got in zip(hexes, results, strict=True):
                expected_rows, expected_distances = brute_force(matrix, pdq, max_distance)
                expected = sorted(zip(ids[expected_rows].tolist(), expected_distances.tolist(), strict=True))
                if got != expected:
                    mismatches.append({"set": name, "pdq": pdq, "got": len(got), "expected": len(expected)})
                candidate_counts.append(candidates(chunk_matrix, pdq))
            figures["queries_with_a_match"] = sum(1 for got in results if got)
            figures["mean_matches"] = statistics.fmean(len(got) for got in results)
            figures["mean_candidates"] = statistics.fmean(candidate_counts)
            figures["max_candidates"] = max(candidate_counts)
            report["lookups"][name] = figures
            print(f"{name}: {figures}", flush=True)
        recalled = 0
        distances = []
        for source, pdq in zip(photos, queries["photo re-encoded + resized"], strict=True):
            from hashes.pdq import hamming

            distance = hamming(own[source], pdq)
            distances.append(distance)
            recalled += distance <= max_distance
        report["reencoded_photos"] = {
            "original_found": recalled,
            "of": len(photos),
            "distance_median": statistics.median(distances),
            "distance_max": max(distances),
        }
        everything = [s for hexes in queries.values() for s in hexes]
        all_samples = []
        cpu = cpu_times(pid)
        for pdq in everything:
            t = time.perf_counter()
            list_matches(pdq, max_distance)
            all_samples.append((time.perf_counter() - t) * 1000)
        report["all_queries_again"] = {**summary(all_samples), **cpu_per_query(cpu, cpu_times(pid), len(everything))}
        report["correct"] = {"queries_checked": len(everything), "mismatches": mismatches[:20]}
        print(f"all queries, second pass: {report['all_queries_again']}", flush=True)

        # The baseline: a full scan computing every distance, its result checked against the index's.
        naive_queries = [
            queries["stored real, 0-31 bits flipped"][min(31, args.queries - 1)],  # 31 bits off, when there
            queries["photo re-encoded + resized"][0],
            queries["random (nothing stored)"][0],
            *queries["stored random, 0-31 bits flipped"][: max(0, args.naive_runs - 3)],
        ]
        naive_samples = []
        with connection.cursor() as cursor:
            for pdq in naive_queries:
                t = time.perf_counter()
                full = naive_scan(cursor, pdq, max_distance)
                naive_samples.append((time.perf_counter() - t) * 1000)
                indexed = sorted((near.row.pk, near.distance) for near in list_matches(pdq, max_distance))
                if full != indexed:
                    mismatches.append({"set": "naive scan", "pdq": pdq, "got": len(indexed), "expected": len(full)})
            report["naive_scan"] = summary(naive_samples)
            report["ratio_naive_over_indexed_p50"] = (
                report["naive_scan"]["p50_ms"] / report["all_queries_again"]["p50_ms"]
            )
            print(f"naive scan: {report['naive_scan']}", flush=True)

            sql, params = lookup_sql(connection, flip_bits(stored[rng.randrange(real_count)], 20, rng))
            plans = {}
            for run in ("first run", "again"):  # first: its pages as cold as any new query's
                plans[run] = explain(connection, sql, params)
        report["explain"] = {run: explain_summary(plan) for run, plan in plans.items()}
        if args.uploads:
            report["upload_hashes"] = upload_lookups(args, connection, stored, queries, rng)
            mismatches.extend({"set": "upload hashes"} for _ in range(report["upload_hashes"]["mismatches"]))
        report["explain_plan"] = plans["first run"]
        report["correct"]["mismatches"] = mismatches[:20]
        report["correct"]["mismatch_count"] = len(mismatches)

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=str))
    _print_report(report)
    print(f"wrote {out}")
    return 0 if not mismatches else 1


def _print_report(report: dict) -> None:
    corpus, load_, size = report["corpus"], report["load"], report["size_mb"]
    print(
        f"\n{report['hashes']:,} hashes over {report['lists']} lists in PostgreSQL: {corpus['real_rows']:,} from"
        f" {corpus['real_photos']:,} real photos and their variants, {corpus['random_rows']:,} random (weight 128)"
    )
    print(
        f"load {load_['total_s']:.0f} s (COPY {load_['copy_s']:.0f} s, indexes {load_['indexes_s']:.0f} s,"
        f" VACUUM ANALYZE {load_['vacuum_analyze_s']:.0f} s); table {size['table']:.0f} MB, indexes"
        f" {size['indexes']:.0f} MB (chunk indexes {size['of_which_chunk_indexes']:.0f} MB)"
    )
    print(f"PostgreSQL {report['postgresql']['version']}, shared_buffers {report['postgresql']['shared_buffers']}")
    header = f"{'list_matches, warm':36} {'p50':>6} {'p95':>6} {'p99':>6} {'max':>6} {'cpu cl':>6} {'cpu db':>6}"
    print(f"{header} {'found':>9} {'cands':>6}")
    for name, f in [*report["lookups"].items(), ("all queries, second pass", report["all_queries_again"])]:
        hits = f"{f['queries_with_a_match']}/{f['runs']}" if "queries_with_a_match" in f else ""
        cands = f"{f['mean_candidates']:.0f}" if "mean_candidates" in f else ""
        server = "" if f["server_cpu_ms"] is None else f"{f['server_cpu_ms']:6.1f}"
        print(
            f"{name:36} {f['p50_ms']:6.1f} {f['p95_ms']:6.1f} {f['p99_ms']:6.1f} {f['max_ms']:6.1f}"
            f" {f['client_cpu_ms']:6.1f} {server:>6} {hits:>9} {cands:>6}"
        )
    naive = report["naive_scan"]
    print(
        f"{'baseline: full scan in SQL':36} {naive['p50_ms']:6.1f} {naive['p95_ms']:6.1f} {'':6} {naive['max_ms']:6.1f}"
    )
    print(f"full scan / index (p50): {report['ratio_naive_over_indexed_p50']:.0f} x")
    print(f"re-encoded photos: {report['reencoded_photos']}")
    for run, facts in report["explain"].items():
        print(f"EXPLAIN (ANALYZE, BUFFERS) of one lookup, {run}: {facts}")
    if "upload_hashes" in report:
        uploads = report["upload_hashes"]
        print(
            f"{uploads['uploads']:,} upload hashes, one upload in ten queued (loaded in {uploads['seconds']:.0f} s);"
            f" pdq_near among the queued ones' (a join), {uploads['mismatches']} mismatches:"
        )
        for name, f in uploads["lookups"].items():
            figures = f"p50 {f['p50_ms']:6.1f} p95 {f['p95_ms']:6.1f} p99 {f['p99_ms']:6.1f} max {f['max_ms']:6.1f}"
            print(f"  {name:40} {figures}, {f['queries_with_a_match']}/{f['runs']} found")
    print(
        f"correctness: {report['correct']['queries_checked']} queries checked against brute force,"
        f" {report['correct']['mismatch_count']} mismatches"
    )


if __name__ == "__main__":
    sys.exit(main())
