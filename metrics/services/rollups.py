"""Recompute the hourly roll-ups from the raw records.

``rollups_refresh`` finds the hours touched since the last refresh (new scores, uploads whose
``updated_at`` moved: routed, decided, undone, re-routed; review rounds opened or closed) and
recomputes each of them whole, from the raw rows, so a refresh is idempotent and a late change
lands in the hour it belongs to. Beat runs it every minute; the dashboard and the threshold page
run it before reading, which costs little when nothing changed.
"""

from __future__ import annotations

import math
from collections import Counter
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Count, Exists, F, IntegerField, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce, TruncHour
from django.utils import timezone

from metrics.models import LatencyBin, QueueHour, RollupState, ScoreCell
from moderation.models import Score, Upload
from reviews.models import Decision, ReviewRound

# A change can commit a little after the timestamp it carries; look back this far each time.
OVERLAP = timedelta(minutes=5)
BINS_PER_DECADE = 20  # durations: bins about 12 % wide
HOUR = timedelta(hours=1)
CHUNK = 5000


def duration_bin(value: float) -> int:
    return math.floor(math.log10(max(value, 1e-3)) * BINS_PER_DECADE)


def duration_of_bin(index: int) -> float:
    """The geometric middle of a duration bin: what a percentile falling in it reports."""
    return 10 ** ((index + 0.5) / BINS_PER_DECADE)


def _hours(queryset, field: str) -> set[datetime]:
    return set(queryset.annotate(_h=TruncHour(field)).order_by().values_list("_h", flat=True).distinct()) - {None}


def _touched_hours(since: datetime | None) -> set[datetime]:
    if since is None:
        scores, uploads, rounds = Score.objects.all(), Upload.objects.all(), ReviewRound.objects.all()
        return (
            _hours(scores, "created_at")
            | _hours(uploads.exclude(decided_at=None), "decided_at")
            | _hours(rounds, "created_at")
            | _hours(rounds.exclude(closed_at=None), "closed_at")
        )
    hours = _hours(Score.objects.filter(created_at__gte=since), "created_at")
    # Ids first, by the updated_at index; then their scores by the upload index, in chunks.
    changed = list(Upload.objects.filter(updated_at__gte=since).values_list("pk", flat=True))
    for start in range(0, len(changed), CHUNK):
        ids = changed[start : start + CHUNK]
        hours |= _hours(Score.objects.filter(upload_id__in=ids), "created_at")
        hours |= _hours(Upload.objects.filter(pk__in=ids).exclude(decided_at=None), "decided_at")
    return (
        hours
        | _hours(ReviewRound.objects.filter(created_at__gte=since), "created_at")
        | _hours(ReviewRound.objects.filter(closed_at__gte=since), "closed_at")
    )


def rollups_refresh(*, rebuild: bool = False) -> int:
    """Bring the roll-ups up to date; returns how many hours were recomputed."""
    now = timezone.now()
    state, _ = RollupState.objects.get_or_create(pk=1)
    since = None if rebuild or state.refreshed_until is None else state.refreshed_until - OVERLAP
    if rebuild:
        ScoreCell.objects.all().delete()
        LatencyBin.objects.all().delete()
        QueueHour.objects.all().delete()
    hours = sorted(_touched_hours(since))
    for hour in hours:
        rollup_hour(hour)
    changes = {"changed_at": timezone.now()} if hours else {}
    RollupState.objects.filter(pk=1).update(refreshed_until=now, **changes)
    return len(hours)


def _score_cells(start: datetime, end: datetime) -> list[ScoreCell]:
    standing = Decision.objects.filter(upload=OuterRef("upload"), round__status=ReviewRound.Status.DECIDED)
    per_upload = standing.order_by().values("upload")
    audit = standing.filter(round__reason=ReviewRound.Reason.AUDIT, upload_decided_by_before=Upload.DecidedBy.AUTO)
    latest = standing.order_by("-created_at", "-id")
    scores = Score.objects.filter(created_at__gte=start, created_at__lt=end).annotate(
        label=Subquery(latest.values("label")[:1]),
        # The category the standing decision names ("" for safe labels and unlabelled uploads).
        label_category=Coalesce(Subquery(latest.values("category")[:1]), Value("")),
        moderators=Subquery(
            per_upload.annotate(n=Count("moderator", distinct=True)).values("n"), output_field=IntegerField()
        ),
        labels=Subquery(per_upload.annotate(n=Count("label", distinct=True)).values("n"), output_field=IntegerField()),
        audit_before=Subquery(audit.order_by("-created_at", "-id").values("upload_status_before")[:1]),
        overturned_audit=Exists(
            audit.filter(
                Q(label="harmful", upload_status_before=Upload.Status.APPROVED)
                | Q(label="safe", upload_status_before=Upload.Status.REJECTED)
            )
        ),
    )
    routed = Q(upload__score_id=F("id"))
    auto = Q(upload__decided_by=Upload.DecidedBy.AUTO)
    auto_approved = routed & (
        (auto & Q(upload__status=Upload.Status.APPROVED)) | Q(audit_before=Upload.Status.APPROVED)
    )
    auto_rejected = routed & (
        (auto & Q(upload__status=Upload.Status.REJECTED)) | Q(audit_before=Upload.Status.REJECTED)
    )
    rows = (
        scores.values("model_version", "cell", "label_category")
        .annotate(
            n=Count("id"),
            approved=Count("id", filter=auto_approved),
            rejected=Count("id", filter=auto_rejected),
            sent=Count("id", filter=routed & ~Q(upload__status=Upload.Status.PENDING)),
            harmful=Count("id", filter=Q(label="harmful")),
            safe=Count("id", filter=Q(label="safe")),
            audited=Count("id", filter=routed & ~Q(audit_before=None)),
            overturned=Count("id", filter=routed & Q(overturned_audit=True)),
            compared=Count("id", filter=Q(moderators__gte=2)),
            agreed=Count("id", filter=Q(moderators__gte=2, labels=1)),
        )
        .order_by()
    )
    return [
        ScoreCell(
            hour=start,
            model_version_id=row["model_version"],
            cell=row["cell"],
            label_category=row["label_category"],
            scored=row["n"],
            auto_approved=row["approved"],
            auto_rejected=row["rejected"],
            queued=row["sent"] - row["approved"] - row["rejected"],
            labelled_harmful=row["harmful"],
            labelled_safe=row["safe"],
            audited=row["audited"],
            overturned=row["overturned"],
            peer_compared=row["compared"],
            peer_agreed=row["agreed"],
        )
        for row in rows
    ]


def _latency_bins(start: datetime, end: datetime) -> list[LatencyBin]:
    """Duration histograms. Durations are binned here, per hour, because SQLite and PostgreSQL
    disagree on date arithmetic; an hour's rows are few."""
    counts: Counter = Counter()
    for version, latency in Score.objects.filter(created_at__gte=start, created_at__lt=end).values_list(
        "model_version", "latency_ms"
    ):
        counts[(LatencyBin.Metric.SCORING, version, duration_bin(latency))] += 1
    finished = Upload.objects.filter(decided_at__gte=start, decided_at__lt=end).values_list(
        "created_at", "decided_at", "decided_by", "score__model_version"
    )
    for created, decided, decided_by, version in finished:
        b = duration_bin((decided - created).total_seconds())
        counts[(LatencyBin.Metric.TO_DECISION, version, b)] += 1
        if decided_by == Upload.DecidedBy.HUMAN:
            counts[(LatencyBin.Metric.TO_HUMAN_DECISION, version, b)] += 1
    return [
        LatencyBin(hour=start, metric=metric, model_version_id=version, bin=b, count=n)
        for (metric, version, b), n in counts.items()
    ]


def rollup_hour(hour: datetime) -> None:
    """Recompute every roll-up row of one hour from the raw records."""
    start, end = hour, hour + HOUR
    with transaction.atomic():
        RollupState.objects.select_for_update().get(pk=1)  # one refresher at a time
        ScoreCell.objects.filter(hour=start).delete()
        LatencyBin.objects.filter(hour=start).delete()
        QueueHour.objects.filter(hour=start).delete()
        ScoreCell.objects.bulk_create(_score_cells(start, end))
        LatencyBin.objects.bulk_create(_latency_bins(start, end))
        opened = ReviewRound.objects.filter(created_at__gte=start, created_at__lt=end).count()
        closed = ReviewRound.objects.filter(closed_at__gte=start, closed_at__lt=end).count()
        if opened or closed:
            QueueHour.objects.create(hour=start, opened=opened, closed=closed)
