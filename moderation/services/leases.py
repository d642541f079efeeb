"""Work leases on uploads: which worker is scoring (or fetching) an upload now, and whether it is
still alive.

A worker *claims* the upload with a conditional UPDATE (the status it expects, and no live lease
held by someone else), so two deliveries of one task message never work on the same upload at
once. While it works, a thread renews the lease's heartbeat every third of
``VIGIL_SCORING_LEASE_SECONDS``; a worker killed mid-task stops renewing, the lease expires, and
the sweeper (:func:`moderation.services.scoring.uploads_requeue_stale`) sends the upload again at
its next run, counting an *interruption*. Finishing, failing over to a retry, or routing the
upload releases the lease.

Why a lease and not the broker: kombu's filesystem transport deletes a message when a worker
fetches it, so ``acks_late`` cannot put it back after a SIGKILL; Redis gives it back only after
its visibility timeout (an hour). The lease bounds recovery the same way on every broker.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from django.conf import settings
from django.db import connection, connections
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone

from moderation.models import Upload

logger = logging.getLogger(__name__)


def lease_owner_name(hostname: str | None = None) -> str:
    """Who holds a lease: the Celery worker's node name (or this host) and the process id, plus a
    random suffix so two attempts in one process are told apart."""
    return f"{hostname or socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"[:200]


def lease_expired_before() -> timezone.datetime:
    """A heartbeat older than this belongs to a worker presumed dead."""
    return timezone.now() - timedelta(seconds=settings.VIGIL_SCORING_LEASE_SECONDS)


def _claimable(status: str) -> Q:
    return Q(status=status) & (Q(lease_owner="") | Q(lease_heartbeat_at__lt=lease_expired_before()))


def upload_lease_claim(*, upload_id: uuid.UUID | str, status: str, owner: str, count_attempt: bool = False) -> bool:
    """Take the lease on an upload in ``status`` that nobody holds, or whose holder stopped
    renewing it. True if this call got it. Taking over an expired lease counts an interruption;
    ``count_attempt`` adds one to ``score_attempts`` in the same UPDATE."""
    now = timezone.now()
    changes = {
        "lease_owner": owner,
        "lease_started_at": now,
        "lease_heartbeat_at": now,
        "lease_interruptions": F("lease_interruptions") + Case(When(lease_owner="", then=Value(0)), default=Value(1)),
    }
    if count_attempt:
        changes["score_attempts"] = F("score_attempts") + 1
    return Upload.objects.filter(_claimable(status), pk=upload_id).update(**changes) == 1


def uploads_lease_claim_batch(*, owner: str, limit: int, exclude: uuid.UUID | str) -> list[Upload]:
    """Take the leases on up to ``limit`` more pending still images to score in one batch with
    ``exclude`` (the upload the task is about), oldest first: the ones whose messages are next in
    the queue. Only first attempts qualify (never scored, never interrupted, no lease): an upload
    that was retried or whose worker died on it is scored alone, so a file that fails or kills the
    worker takes only itself down the next time. Each one's ``score_attempts`` is counted; their
    own task messages, when they come, find them leased or routed and do nothing. Three
    statements, whatever the batch size; two workers racing for the same uploads each get the
    ones their conditional UPDATE changed."""
    if limit < 1:
        return []
    candidates = list(
        Upload.objects.filter(
            status=Upload.Status.PENDING,
            kind=Upload.Kind.IMAGE,
            frames__lte=1,
            lease_owner="",
            score_attempts=0,
            lease_interruptions=0,
        )
        .exclude(pk=exclude)
        .order_by("created_at")
        .values_list("pk", flat=True)[:limit]
    )
    if not candidates:
        return []
    now = timezone.now()
    Upload.objects.filter(pk__in=candidates, status=Upload.Status.PENDING, lease_owner="").update(
        lease_owner=owner, lease_started_at=now, lease_heartbeat_at=now, score_attempts=F("score_attempts") + 1
    )
    return list(Upload.objects.filter(pk__in=candidates, lease_owner=owner).order_by("created_at"))


def upload_lease_renew(*, upload_id: uuid.UUID | str, owner: str) -> bool:
    """Say the holder is still at work. False if the lease was lost (taken over, or released)."""
    return uploads_lease_renew(upload_ids=[upload_id], owner=owner) == 1


def uploads_lease_renew(*, upload_ids: list[uuid.UUID | str], owner: str) -> int:
    """Renew the leases ``owner`` still holds among ``upload_ids`` (one statement); how many."""
    return Upload.objects.filter(pk__in=upload_ids, lease_owner=owner).update(lease_heartbeat_at=timezone.now())


def upload_lease_release(*, upload_id: uuid.UUID | str, owner: str) -> bool:
    """Give the lease up (the attempt ended, well or badly, without the worker dying)."""
    return uploads_lease_release(upload_ids=[upload_id], owner=owner) == 1


def uploads_lease_release(*, upload_ids: list[uuid.UUID | str], owner: str) -> int:
    """Give up the leases ``owner`` still holds among ``upload_ids`` (one statement); how many."""
    return Upload.objects.filter(pk__in=upload_ids, lease_owner=owner).update(lease_owner="", lease_heartbeat_at=None)


LEASE_CLEARED = {"lease_owner": "", "lease_heartbeat_at": None}
"""Fields for an UPDATE that moves the upload on (routed, failed, fetched): the lease ends with it."""


def uploads_lease_expired(*, statuses: tuple[str, ...], limit: int = 1000) -> list[uuid.UUID]:
    """Uploads in ``statuses`` whose worker stopped renewing its lease."""
    return list(
        Upload.objects.filter(status__in=statuses, lease_heartbeat_at__lt=lease_expired_before())
        .exclude(lease_owner="")
        .order_by("lease_heartbeat_at")
        .values_list("pk", flat=True)[:limit]
    )


def upload_lease_expire(*, upload_id: uuid.UUID, statuses: tuple[str, ...]) -> bool:
    """Count the interruption of an expired lease and free the upload for the next claim (the
    sweeper then sends it again). Conditional, so two sweepers count it once."""
    now = timezone.now()
    return (
        Upload.objects.filter(pk=upload_id, status__in=statuses, lease_heartbeat_at__lt=lease_expired_before())
        .exclude(lease_owner="")
        .update(
            lease_owner="", lease_heartbeat_at=None, lease_interruptions=F("lease_interruptions") + 1, updated_at=now
        )
        == 1
    )


STUCK_EXIT_CODE = 70  # EX_SOFTWARE: the supervisor restarts the worker


def _stuck(upload_id: uuid.UUID | str | list, seconds: float) -> None:
    """An attempt held its lease longer than ``VIGIL_SCORING_MAX_SECONDS``: presumed stuck (a
    decoder in a loop, a wedged call). The lease is no longer renewed, so the sweeper sends the
    upload again and counts the interruption (twice, and it goes to humans undecoded). In a
    worker's main process (the thread pool ``make run`` uses), the stuck thread would hold the
    worker's slot for good, so the process exits and its supervisor starts a fresh one: crash-only.
    In a prefork child, Celery's own time limits are the tool (docs/deploy.md)."""
    from moderation.heartbeat import in_worker_main_process

    logger.critical("upload(s) %s worked on for more than %.0f s: presumed stuck", upload_id, seconds)
    if in_worker_main_process():
        logger.critical("stopping this worker (exit %d) so that its supervisor restarts it", STUCK_EXIT_CODE)
        logging.shutdown()
        os._exit(STUCK_EXIT_CODE)


class _Heartbeat(threading.Thread):
    def __init__(self, upload_ids: list[uuid.UUID | str], owner: str, interval: float, max_seconds: float) -> None:
        super().__init__(name=f"lease-{upload_ids[0]}", daemon=True)
        self.upload_ids, self.owner, self.interval, self.max_seconds = upload_ids, owner, interval, max_seconds
        self.began = time.monotonic()
        self.stopped = threading.Event()

    def run(self) -> None:
        try:
            while not self.stopped.wait(self.interval):
                if time.monotonic() - self.began > self.max_seconds:
                    _stuck(self.upload_ids if len(self.upload_ids) > 1 else self.upload_ids[0], self.max_seconds)
                    return  # never renewed again: the lease expires
                try:
                    if not uploads_lease_renew(upload_ids=self.upload_ids, owner=self.owner):
                        return  # released, routed or taken over: nothing left to renew
                except Exception:
                    logger.exception("could not renew the leases on uploads %s", self.upload_ids)
        finally:
            connections.close_all()  # this thread's own connections


@contextmanager
def lease_kept_alive(*, upload_id: uuid.UUID | str, owner: str) -> Iterator[None]:
    """Renew the lease from a thread while the block runs (a video can take a minute, one frame
    batch longer than the lease). Inside a transaction (tests), the thread's own connection would
    only wait on it, so no thread is started: the block must then be shorter than the lease."""
    with leases_kept_alive(upload_ids=[upload_id], owner=owner):
        yield


@contextmanager
def leases_kept_alive(*, upload_ids: list[uuid.UUID | str], owner: str) -> Iterator[None]:
    """:func:`lease_kept_alive` for a batch: one thread renews every lease ``owner`` still holds
    among ``upload_ids`` in one statement (a routed upload's lease is already cleared)."""
    if connection.in_atomic_block:
        yield
        return
    beat = _Heartbeat(
        list(upload_ids), owner, settings.VIGIL_SCORING_LEASE_SECONDS / 3, settings.VIGIL_SCORING_MAX_SECONDS
    )
    beat.start()
    try:
        yield
    finally:
        beat.stopped.set()  # not joined: a renewal in flight ends by itself and changes nothing
