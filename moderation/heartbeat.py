"""Worker heartbeats: a thread in each Celery worker's main process writes its row every
``VIGIL_WORKER_HEARTBEAT_SECONDS`` (started on ``worker_ready``, the row removed on a clean
``worker_shutdown``; config/celery.py connects them).

A thread of its own, not the worker's event loop or a pool child: it works the same with the
prefork and the solo pool and on every broker, a slow database write never holds up message
handling, and pool children (which come and go) never see it. A worker killed with SIGKILL stops
writing; readiness counts only rows seen within ``VIGIL_WORKER_STALE_SECONDS``. A worker whose
main process lives while its pool no longer takes work still beats: the age of the oldest pending
upload is what shows that (moderation/services/health.py)."""

from __future__ import annotations

import logging
import os
import threading

from django.conf import settings
from django.db import connections
from django.utils import timezone

from moderation.models import WorkerHeartbeat

logger = logging.getLogger(__name__)


def worker_heartbeat_record(*, hostname: str, queues: list[str], started_at) -> None:
    WorkerHeartbeat.objects.update_or_create(
        hostname=hostname[:200],
        defaults={"queues": queues, "pid": os.getpid(), "started_at": started_at, "last_seen_at": timezone.now()},
    )


def worker_heartbeat_remove(*, hostname: str) -> None:
    WorkerHeartbeat.objects.filter(hostname=hostname[:200]).delete()


class _HeartbeatThread(threading.Thread):
    def __init__(self, hostname: str, queues: list[str]) -> None:
        super().__init__(name="vigil-heartbeat", daemon=True)
        self.hostname, self.queues = hostname, queues
        self.started_at = timezone.now()
        self.stopped = threading.Event()

    def run(self) -> None:
        try:
            while True:
                try:
                    worker_heartbeat_record(hostname=self.hostname, queues=self.queues, started_at=self.started_at)
                except Exception:
                    logger.exception("could not record the worker heartbeat")
                finally:
                    connections.close_all()  # no idle connection held between beats
                if self.stopped.wait(settings.VIGIL_WORKER_HEARTBEAT_SECONDS):
                    return
        finally:
            connections.close_all()


_thread: _HeartbeatThread | None = None
_main_pid: int | None = None


def in_worker_main_process() -> bool:
    """Whether this is a Celery worker's main process (where its tasks run with the thread or
    solo pool), not a prefork child (which inherits the globals, not the pid) nor the web."""
    return _main_pid == os.getpid()


def heartbeat_start(*, hostname: str, queues: list[str]) -> None:
    global _thread, _main_pid
    if _thread is not None and _thread.is_alive():
        return
    _main_pid = os.getpid()
    _thread = _HeartbeatThread(hostname, sorted(queues))
    _thread.start()


def heartbeat_stop() -> None:
    """A clean stop: readiness learns at once that this worker is gone."""
    global _thread
    if _thread is None:
        return
    _thread.stopped.set()
    _thread.join(timeout=10)
    try:
        worker_heartbeat_remove(hostname=_thread.hostname)
    except Exception:
        logger.exception("could not remove the worker heartbeat")
    finally:
        connections.close_all()
    _thread = None
