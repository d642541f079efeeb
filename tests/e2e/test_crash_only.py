"""Issue 17's acceptance test: crash-only, as `make run` runs it.

The real supervised stack (tests/e2e/supervised.py: supervisord, web, scoring worker,
housekeeping worker, trainer, beat) takes 200 uploads from concurrent API clients over real HTTP;
about a third of the way through, the process running the scoring task gets SIGKILL. With
`make run`'s thread pool that is the scoring worker's main process (there is no pool child; a
prefork pool would have one, and the test kills whichever runs the task). Then:

- the web kept serving: no connection error and no 5xx, on uploads or on /healthz probes;
- nothing was lost: every upload reached a routed status (approved, rejected, queued, failed);
- nothing was scored or routed twice: one Score per upload and model version, one review round;
- every upload was routed within 30 s of the kill plus the time the restarted worker needed to
  drain the backlog (the interrupted upload's message is gone with its worker on the filesystem
  broker, and unacknowledged for an hour on Redis: its lease expires and the sweeper sends it again);
- after the storage sweep (grace 0, the stack stopped), every file under media is referenced by a
  row, and every referenced file exists.

Runs on the embedded default (SQLite + filesystem broker) and on PostgreSQL + Redis (skipped
when those servers are not reachable on 127.0.0.1). The figures are printed (``-s``), recorded as
pytest properties and written to ``crash_only.json`` in the test's temporary folder.

Every wait polls a condition with a generous bound: this runs on loaded 2-core machines.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from PIL import Image

from tests.e2e.supervised import PROGRAMS, ROOT, Prober, Stack, children, supervised_stack, wait_for
from tests.images import encode

pytestmark = pytest.mark.slow

UPLOADS = 200
CLIENTS = 12
KILL_AFTER = UPLOADS // 3
TARGET = 30  # seconds from the kill to every upload routed, plus the backlog's drain time
ROUTED = ("approved", "rejected", "queued", "failed")
POSTGRES = ("127.0.0.1", 5432)
REDIS = ("127.0.0.1", 6379)


def reachable(address: tuple[str, int]) -> bool:
    try:
        with socket.create_connection(address, timeout=2):
            return True
    except OSError:
        return False


class Database:
    """Read-only queries on the stack's database, from the test process (no Django: the test's
    own settings point at pytest's database)."""

    def __init__(self, *, sqlite_path: Path | None = None, postgres_url: str | None = None) -> None:
        self.sqlite_path, self.postgres_url = sqlite_path, postgres_url
        self._connection = None

    def rows(self, sql: str) -> list[tuple]:
        if self._connection is None:
            if self.sqlite_path:
                self._connection = sqlite3.connect(self.sqlite_path, timeout=60, isolation_level=None)
            else:
                import psycopg

                self._connection = psycopg.connect(self.postgres_url, autocommit=True)
        return list(self._connection.execute(sql).fetchall())

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def epoch(value) -> float | None:
    """A timestamp from either database as seconds since the epoch (SQLite stores UTC text)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


@pytest.fixture(params=["embedded", "postgres+redis"])
def backend(request, tmp_path):
    """(name, extra environment, a Database factory for the stack's var folder)."""
    if request.param == "embedded":
        yield "embedded", {}, lambda var: Database(sqlite_path=var / "vigil.sqlite3")
        return
    missing = [name for name, address in (("PostgreSQL", POSTGRES), ("Redis", REDIS)) if not reachable(address)]
    if missing:
        pytest.skip(f"{' and '.join(missing)} not reachable on 127.0.0.1 (ports 5432, 6379)")
    import psycopg
    import redis

    admin_url = f"postgres://postgres@{POSTGRES[0]}:{POSTGRES[1]}/postgres"
    name = f"vigil_crash_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    # An empty Redis database that `make test-services` (15) and others are not using right now.
    number = next((n for n in range(13, 0, -1) if redis.Redis(*REDIS, db=n).dbsize() == 0), None)
    if number is None:
        pytest.skip("no empty Redis database (1-13) to use as the broker")
    database_url = f"postgres://postgres@{POSTGRES[0]}:{POSTGRES[1]}/{name}"
    env = {"DATABASE_URL": database_url, "CELERY_BROKER_URL": f"redis://{REDIS[0]}:{REDIS[1]}/{number}"}
    try:
        yield "postgres+redis", env, lambda var: Database(postgres_url=database_url)
    finally:
        redis.Redis(*REDIS, db=number).flushdb()
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def picture(n: int) -> tuple[bytes, str, str]:
    """A small distinct JPEG or PNG for upload ``n``."""
    image = Image.new("RGB", (128, 96), ((n * 37) % 256, (n * 91) % 256, (n * 53) % 256))
    image.paste((255 - (n % 256), n % 7 * 30, 90), (n % 64, n % 48, n % 64 + 40, n % 48 + 30))
    if n % 2:
        return encode(image, "PNG"), f"{n}.png", "image/png"
    return encode(image, "JPEG", quality=85), f"{n}.jpg", "image/jpeg"


class Clients:
    """``CLIENTS`` threads posting ``UPLOADS`` pictures as fast as the web takes them."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.lock = threading.Lock()
        self.next = 0
        self.accepted: dict[int, str] = {}
        self.failures: list[str] = []
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(CLIENTS)]

    def _run(self) -> None:
        while True:
            with self.lock:
                if self.next >= UPLOADS:
                    return
                n, self.next = self.next, self.next + 1
            content, filename, content_type = picture(n)
            try:
                status, body = self.stack.post_file(content, filename, content_type, timeout=120)
            except OSError as exc:
                with self.lock:
                    self.failures.append(f"upload {n}: {exc!r}")
                continue
            with self.lock:
                if status == 201:
                    self.accepted[n] = json.loads(body)["id"]
                else:
                    self.failures.append(f"upload {n}: HTTP {status} {body[:200]!r}")

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def done(self) -> int:
        with self.lock:
            return len(self.accepted) + len(self.failures)

    def join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        assert not any(thread.is_alive() for thread in self.threads), "the upload clients did not finish"


def resent_at(stack: Stack, upload_id) -> float | None:
    """When the housekeeping worker's sweeper sent ``upload_id`` again (its log line), or None."""
    upload_id = uuid.UUID(str(upload_id))  # SQLite keeps it as 32 hex digits, the log with dashes
    for line in stack.log("housekeeping").splitlines():
        if f"upload {upload_id}: its worker stopped renewing the lease" in line:
            stamp = line[1 : line.index(":", line.index(" ") + 7)]  # "[2026-12-02 13:45:23,485: WARNING..."
            return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()  # the log's local time
    return None


def sweep_and_list(stack: Stack) -> dict:
    """With the stack stopped: run the storage sweep with no grace period (nothing is being written
    any more), then report the files under media and the names the rows reference."""
    script = """
import json
from django.conf import settings
from moderation.models import Upload
from moderation.services.storage_sweep import storage_sweep
result = storage_sweep(grace_seconds=0)
root = settings.MEDIA_ROOT
files = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
referenced = sorted({n for pair in Upload.objects.values_list("original", "display") for n in pair if n})
print(json.dumps({"scanned": result.record.scanned, "deleted": [o.name for o in result.orphans],
                  "errors": result.record.errors, "note": result.record.note,
                  "files": files, "referenced": referenced}))
"""
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", script],
        cwd=ROOT,
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_a_scoring_worker_killed_mid_run_costs_seconds_never_an_upload(backend, tmp_path, record_property):
    name, env, database = backend
    var = tmp_path / "var"
    with supervised_stack(var, env=env, client="crash-only") as stack:
        db = database(var)
        try:
            figures = _kill_during_uploads(stack, db, name)
            stack.stop()
            figures.update(_check_after(stack, db))
        finally:
            db.close()

    print(f"\ncrash-only on {name}: " + json.dumps(figures, indent=1))
    for key, value in figures.items():
        record_property(key, value)
    (tmp_path / "crash_only.json").write_text(json.dumps({name: figures}, indent=1))

    # Every upload routed within TARGET s of the kill plus the backlog's drain time.
    assert figures["last_routed_after_kill_s"] <= TARGET + figures["drain_s"], figures
    assert figures["interrupted_routed_after_kill_s"] <= TARGET + figures["drain_s"], figures


def _kill_during_uploads(stack: Stack, db: Database, name: str) -> dict:
    worker = stack.pid("worker")
    others = {program: stack.pid(program) for program in PROGRAMS if program != "worker"}
    readies = stack.log("worker").count(" ready.")
    prober = Prober(stack)
    clients = Clients(stack)
    prober.start()
    started = time.time()
    clients.start()
    try:
        wait_for(lambda: clients.done() >= KILL_AFTER, "a third of the uploads", timeout=180, interval=0.05)
        # The process that runs the scoring task: the worker itself with the thread pool, its pool
        # child with prefork. Killed while it holds an upload's lease (mid-task) if it does within
        # a few seconds; the lease is taken and released in milliseconds, so poll tightly.
        pool = children(worker)
        task_process = pool[0] if pool else worker
        in_hand = f"SELECT id FROM moderation_upload WHERE status = 'pending' AND lease_owner LIKE '%:{task_process}:%'"
        deadline = time.monotonic() + 30
        while not db.rows(in_hand) and time.monotonic() < deadline:
            time.sleep(0.002)
        os.kill(task_process, signal.SIGKILL)
        killed_at, killed_mono = time.time(), time.monotonic()
        accepted_at_kill = clients.done()
        interrupted = [row[0] for row in db.rows(in_hand)]
        backlog_at_kill = db.rows("SELECT COUNT(*) FROM moderation_upload WHERE status = 'pending'")[0][0]

        new_worker = wait_for(
            lambda: (pid := stack.pid("worker")) and pid != worker and pid, "a new scoring worker", timeout=180
        )
        wait_for(lambda: stack.log("worker").count(" ready.") > readies, "the new worker to be ready", timeout=180)
        ready_s = time.monotonic() - killed_mono

        clients.join(timeout=300)
        uploaded_s = time.time() - started
        wait_for(
            lambda: (
                db.rows(f"SELECT COUNT(*) FROM moderation_upload WHERE status IN {ROUTED}")[0][0]
                >= len(clients.accepted)
            ),
            "every accepted upload to be routed",
            timeout=240,
            interval=0.5,
        )
    finally:
        prober.stop()

    # The web kept serving throughout: every request answered, none with a 5xx.
    assert clients.failures == [], clients.failures[:10]
    assert len(clients.accepted) == UPLOADS
    assert prober.errors == [], prober.errors[:5]
    assert prober.ok > 0
    # Only the worker was restarted.
    assert {program: stack.pid(program) for program in others} == others
    assert new_worker != worker

    rows = db.rows(
        "SELECT id, status, created_at, routed_at, lease_started_at, lease_interruptions FROM moderation_upload"
    )
    assert len(rows) == UPLOADS
    routed = {row[0]: epoch(row[3]) for row in rows}
    after_kill = sorted(t - killed_at for upload, t in routed.items() if t > killed_at and upload not in interrupted)
    figures = {
        "backend": name,
        "pool": "prefork (killed the pool child)" if task_process != worker else "threads (killed the main process)",
        "uploads": UPLOADS,
        "clients": CLIENTS,
        "uploads_accepted_at_kill": accepted_at_kill,
        "backlog_at_kill": backlog_at_kill,
        "interrupted_mid_task": len(interrupted),
        "upload_seconds": round(uploaded_s, 1),
        "healthz_probes_ok": prober.ok,
        "worker_ready_after_kill_s": round(ready_s, 1),
        "first_routed_after_kill_s": round(after_kill[0], 1) if after_kill else None,
        # How long the restarted worker took over the rest of the queue (zero if it had none).
        "drain_s": round(after_kill[-1] - after_kill[0], 1) if after_kill else 0.0,
        "last_routed_after_kill_s": round(max(routed.values()) - killed_at, 1),
        "statuses": dict(Counter(row[1] for row in rows)),
        "interruptions_counted": sum(row[5] for row in rows),
    }
    for row in rows:
        if row[0] in interrupted:
            resent = resent_at(stack, row[0])
            figures["interrupted_resent_by_sweeper_after_kill_s"] = resent and round(resent - killed_at, 1)
            figures["interrupted_picked_up_after_kill_s"] = round(epoch(row[4]) - killed_at, 1)
            figures["interrupted_routed_after_kill_s"] = round(epoch(row[3]) - killed_at, 1)
    if not interrupted:  # the kill fell between two tasks: nothing was in hand
        figures["interrupted_routed_after_kill_s"] = 0.0
    return figures


def _check_after(stack: Stack, db: Database) -> dict:
    # Nothing lost.
    statuses = db.rows("SELECT status, COUNT(*) FROM moderation_upload GROUP BY status")
    assert {status for status, _ in statuses} <= set(ROUTED), statuses
    # Nothing scored twice: one Score per upload and model version, and it is the upload's score;
    # every upload routed by a score has exactly one.
    assert (
        db.rows(
            "SELECT upload_id, model_version_id, COUNT(*) FROM moderation_score "
            "GROUP BY upload_id, model_version_id HAVING COUNT(*) > 1"
        )
        == []
    )
    per_upload = db.rows(
        "SELECT u.id, u.status, u.score_id, COUNT(s.id), MIN(s.id) FROM moderation_upload u "
        "LEFT JOIN moderation_score s ON s.upload_id = u.id GROUP BY u.id, u.status, u.score_id"
    )
    for upload, status, score_id, scores, first in per_upload:
        if status == "failed":
            assert scores <= 1, (upload, scores)
        else:
            assert (scores, score_id) == (1, first), (upload, status, scores)
    # Routed once: at most one review round per upload, and one for each upload awaiting a human.
    rounds = dict(db.rows("SELECT upload_id, COUNT(*) FROM reviews_reviewround GROUP BY upload_id"))
    assert all(count == 1 for count in rounds.values()), rounds
    awaiting = {row[0] for row in db.rows("SELECT id FROM moderation_upload WHERE status IN ('queued', 'failed')")}
    assert awaiting <= set(rounds), awaiting - set(rounds)

    # No orphans after the sweep, and no row pointing at a missing file.
    swept = sweep_and_list(stack)
    assert swept["errors"] == 0 and not swept["note"], swept
    files, referenced = set(swept["files"]), set(swept["referenced"])
    assert files - referenced == set(), sorted(files - referenced)[:10]
    assert referenced - files == set(), sorted(referenced - files)[:10]
    return {"files_after_sweep": len(files), "orphans_deleted_by_sweep": swept["deleted"]}
