"""Reads of the review queue: filters, orderings and counts over open rounds."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import timedelta
from enum import StrEnum

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, F, Q, QuerySet
from django.utils import timezone

from reviews.models import ReviewRound


class Ordering(StrEnum):
    UNCERTAIN = "uncertain"
    SCORE_DESC = "score_desc"
    SCORE_ASC = "score_asc"
    OLDEST = "oldest"
    INFORMATIVE = "informative"

    @property
    def order_by(self) -> tuple:
        """Sort keys. Unscored (failed) items come first by highest score and last by lowest: the
        unknown is treated as risky. That is PostgreSQL's default NULL order, so the partial
        indexes serve it. Most informative first: where a shadow model disagrees most with the
        routing one, then most uncertain (with no shadow model every disagreement is 0, so it is
        the most uncertain order). The primary key breaks ties so the order is total."""
        return {
            Ordering.UNCERTAIN: ("uncertainty", "uploaded_at", "id"),
            Ordering.SCORE_DESC: (F("harmful_score").desc(nulls_first=True), "uploaded_at", "id"),
            Ordering.SCORE_ASC: (F("harmful_score").asc(nulls_last=True), "uploaded_at", "id"),
            Ordering.OLDEST: ("uploaded_at", "id"),
            Ordering.INFORMATIVE: (F("disagreement").desc(), "uncertainty", "uploaded_at", "id"),
        }[self]


ORDERING_LABELS = {
    Ordering.UNCERTAIN: "Most uncertain first",
    Ordering.SCORE_DESC: "Highest score first",
    Ordering.SCORE_ASC: "Lowest score first (easy approvals)",
    Ordering.OLDEST: "Oldest first",
    Ordering.INFORMATIVE: "Most informative first (helps retraining)",
}


@dataclass(frozen=True)
class QueueFilters:
    """What a moderator asked to see. Empty fields do not filter."""

    score_min: float | None = None
    score_max: float | None = None
    category: str = ""
    source: str = ""
    reason: str = ""
    older_than_hours: float | None = None
    newer_than_hours: float | None = None

    def apply(self, rounds: QuerySet[ReviewRound]) -> QuerySet[ReviewRound]:
        now = timezone.now()
        if self.score_min is not None:
            rounds = rounds.filter(harmful_score__gte=self.score_min)
        if self.score_max is not None:
            rounds = rounds.filter(harmful_score__lte=self.score_max)
        if self.category:
            rounds = rounds.filter(category=self.category)
        if self.source:
            rounds = rounds.filter(source__username=self.source)
        if self.reason:
            rounds = rounds.filter(reason=self.reason)
        if self.older_than_hours is not None:
            rounds = rounds.filter(uploaded_at__lte=now - timedelta(hours=self.older_than_hours))
        if self.newer_than_hours is not None:
            rounds = rounds.filter(uploaded_at__gte=now - timedelta(hours=self.newer_than_hours))
        return rounds

    def as_query(self) -> dict[str, str]:
        return {f.name: str(getattr(self, f.name)) for f in fields(self) if getattr(self, f.name) not in (None, "")}

    @property
    def active(self) -> bool:
        return bool(self.as_query())


def rounds_open() -> QuerySet[ReviewRound]:
    return ReviewRound.objects.filter(status=ReviewRound.Status.OPEN)


def rounds_claimable(*, moderator: AbstractBaseUser, now=None) -> QuerySet[ReviewRound]:
    """Open rounds nobody holds (or whose lease ran out), that ``moderator`` may take."""
    now = now or timezone.now()
    return (
        rounds_open()
        .filter(Q(claimed_by__isnull=True) | Q(lease_expires_at__lte=now) | Q(claimed_by=moderator))
        .exclude(excluded_moderator=moderator)
    )


def queue_page_rounds(*, filters: QueueFilters, ordering: Ordering) -> QuerySet[ReviewRound]:
    return (
        filters.apply(rounds_open())
        .select_related("upload__score__model_version", "source", "claimed_by")
        .order_by(*ordering.order_by)
    )


@dataclass(frozen=True)
class QueueCounts:
    waiting: int
    matching: int
    in_review: int
    by_reason: dict[str, int]


def queue_counts(*, filters: QueueFilters | None = None) -> QueueCounts:
    """The numbers shown on every review page, in one aggregate query over open rounds."""
    now = timezone.now()
    aggregates = {
        "waiting": Count("id"),
        "in_review": Count("id", filter=Q(claimed_by__isnull=False, lease_expires_at__gt=now)),
        **{f"reason_{r}": Count("id", filter=Q(reason=r)) for r in ReviewRound.Reason.values},
    }
    totals = rounds_open().aggregate(**aggregates)
    matching = filters.apply(rounds_open()).count() if filters and filters.active else totals["waiting"]
    return QueueCounts(
        waiting=totals["waiting"],
        matching=matching,
        in_review=totals["in_review"],
        by_reason={r: totals[f"reason_{r}"] for r in ReviewRound.Reason.values},
    )
