"""Start a real Celery worker process on the configured broker and the test database."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def test_database_url() -> str:
    """The URL of the database this test run uses (pytest-django's test database)."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    credentials = quote(db["USER"] or "") + (f":{quote(db['PASSWORD'])}" if db.get("PASSWORD") else "")
    return f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def purge_broker() -> None:
    """Drop messages left by earlier tests, so the worker only sees this test's work."""
    if settings.CELERY_BROKER_URL.startswith("filesystem://"):
        for sub in ("queue", "processed"):
            shutil.rmtree(settings.BROKER_DIR / sub, ignore_errors=True)
            (settings.BROKER_DIR / sub).mkdir(parents=True)
        return
    from config.celery import app

    with app.connection_for_write() as connection:
        for queue in ("celery", "scoring", "fetch", "webhooks", "training"):
            channel = connection.channel()
            try:
                channel.queue_purge(queue)
            except connection.channel_errors:
                pass  # RabbitMQ: the queue was never declared, so it holds nothing
            finally:
                channel.close()


@contextmanager
def celery_worker(
    log_path: Path,
    *,
    ready_timeout: float = 120,
    queues: str = "scoring,fetch,webhooks,celery",
    name: str = "test",
    env: dict[str, str] | None = None,
    pool: str = "prefork",
):
    """Run a worker consuming ``queues`` for the duration of the block; ``env`` adds settings;
    ``pool``: Celery's (``make run`` uses ``threads``). Call :func:`purge_broker` first."""
    env = {
        **os.environ,
        "DATABASE_URL": test_database_url(),
        "VIGIL_MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "PYTHONUNBUFFERED": "1",
        "VIGIL_AUDIT_APPROVED_RATE": str(settings.VIGIL_AUDIT_APPROVED_RATE),
        "VIGIL_AUDIT_REJECTED_RATE": str(settings.VIGIL_AUDIT_REJECTED_RATE),
        **(env or {}),
    }
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "config",
        "worker",
        "--loglevel=INFO",
        "--concurrency=1",
        f"--pool={pool}",
        f"--queues={queues}",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        f"--hostname={name}-{os.getpid()}@%h",
    ]
    with _running(command, env, log_path, ready=" ready.", what="Celery worker", ready_timeout=ready_timeout) as worker:
        yield worker


@contextmanager
def celery_beat(log_path: Path, *, ready_timeout: float = 120, env: dict[str, str] | None = None):
    """Run Celery beat (django-celery-beat's DatabaseScheduler, the settings' schedule) on the
    test database for the duration of the block."""
    env = {
        **os.environ,
        "DATABASE_URL": test_database_url(),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "PYTHONUNBUFFERED": "1",
        **(env or {}),
    }
    command = [sys.executable, "-m", "celery", "-A", "config", "beat", "--loglevel=DEBUG"]
    started = _running(command, env, log_path, ready="beat: Starting", what="Celery beat", ready_timeout=ready_timeout)
    with started as beat:
        yield beat


@contextmanager
def _running(command: list[str], env: dict, log_path: Path, *, ready: str, what: str, ready_timeout: float):
    """Start ``command`` logging to ``log_path``, wait (polling, bounded) for ``ready`` in the log,
    and stop it when the block ends. Its own process group, so a test can kill it and its
    children at once."""
    with log_path.open("w") as log:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + ready_timeout
        while ready not in log_path.read_text():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start:\n{log_path.read_text()[-4000:]}")
            time.sleep(0.2)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
