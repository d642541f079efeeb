"""Whether uploads are getting scored: read by ``/readyz``, ``/metrics`` and the staff banner.

Degraded (not down: the web still takes uploads, which wait safely) when no scoring worker has
written a heartbeat within ``VIGIL_WORKER_STALE_SECONDS``, or the oldest pending upload has waited
longer than ``VIGIL_READY_PENDING_MAX_SECONDS`` (a worker alive but not consuming, or a backlog
larger than the workers can drain)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db.models import Min
from django.utils import timezone

from moderation.models import Upload, WorkerHeartbeat

SCORING_QUEUE = "scoring"


@dataclass(frozen=True)
class ScoringHealth:
    workers_alive: dict[str, int]  # per queue consumed
    oldest_pending_seconds: float  # 0 when nothing is pending
    reasons: list[str] = field(default_factory=list)

    @property
    def scoring_workers_alive(self) -> int:
        return self.workers_alive.get(SCORING_QUEUE, 0)

    @property
    def degraded(self) -> bool:
        return bool(self.reasons)

    def __bool__(self) -> bool:  # truthy when something is wrong, for templates
        return self.degraded


def workers_alive() -> dict[str, int]:
    """Workers seen within ``VIGIL_WORKER_STALE_SECONDS``, counted per queue they consume."""
    since = timezone.now() - timedelta(seconds=settings.VIGIL_WORKER_STALE_SECONDS)
    counts: dict[str, int] = {}
    for queues in WorkerHeartbeat.objects.filter(last_seen_at__gte=since).values_list("queues", flat=True):
        for queue in queues:
            counts[queue] = counts.get(queue, 0) + 1
    return counts


def oldest_pending_seconds() -> float:
    """How long the oldest upload waiting for a score has waited (since it was accepted, or
    fetched for a URL submission: ``created_at`` is when it was accepted)."""
    oldest = Upload.objects.filter(status=Upload.Status.PENDING).aggregate(t=Min("created_at"))["t"]
    return max(0.0, (timezone.now() - oldest).total_seconds()) if oldest else 0.0


def scoring_health() -> ScoringHealth:
    alive = workers_alive()
    oldest = oldest_pending_seconds()
    reasons = []
    if not alive.get(SCORING_QUEUE):
        reasons.append(f"no scoring worker has reported in the last {settings.VIGIL_WORKER_STALE_SECONDS} s")
    if oldest > settings.VIGIL_READY_PENDING_MAX_SECONDS:
        reasons.append(
            f"the oldest pending upload has waited {oldest:.0f} s "
            f"(more than {settings.VIGIL_READY_PENDING_MAX_SECONDS} s): uploads are not being scored"
        )
    return ScoringHealth(workers_alive=alive, oldest_pending_seconds=oldest, reasons=reasons)


def worker_heartbeats_prune(*, older_than: timedelta = timedelta(days=1)) -> int:
    """Forget workers gone for a day (killed ones never remove their row)."""
    return WorkerHeartbeat.objects.filter(last_seen_at__lt=timezone.now() - older_than).delete()[0]
