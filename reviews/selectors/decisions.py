"""Reads of recorded decisions: the "My decisions" page (admins: anyone's)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Q, QuerySet
from django.utils import timezone

from accounts.roles import Role, user_has_role
from reviews.models import Decision, ReviewRound
from reviews.selectors.stats import MODEL_LEAN

STANDING, UNDONE, ALL = "standing", "undone", "all"

# The decision went against the model's lean at the time (harmful at a score of at least 0.5),
# the same rule as "agreement with the model" in the moderator statistics.
OVERTURNED = Q(label=Decision.Label.HARMFUL, model_score__lt=MODEL_LEAN) | Q(
    label=Decision.Label.SAFE, model_score__gte=MODEL_LEAN
)


def decisions_visible_to(user: AbstractBaseUser) -> QuerySet[Decision]:
    """Admins see every decision; a moderator only their own."""
    decisions = Decision.objects.all()
    return decisions if user_has_role(user, Role.ADMIN) else decisions.filter(moderator=user)


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


@dataclass(frozen=True)
class DecisionFilters:
    """What the list asks for. Empty fields do not filter."""

    moderator_id: int | None = None
    label: str = ""
    category: str = ""
    date_from: date | None = None
    date_to: date | None = None  # inclusive: the whole day
    overturned: bool | None = None
    state: str = STANDING

    def apply(self, decisions: QuerySet[Decision]) -> QuerySet[Decision]:
        if self.moderator_id is not None:
            decisions = decisions.filter(moderator_id=self.moderator_id)
        if self.label:
            decisions = decisions.filter(label=self.label)
        if self.category:
            decisions = decisions.filter(Q(category=self.category) | Q(round__category=self.category))
        if self.date_from:
            decisions = decisions.filter(created_at__gte=_day_start(self.date_from))
        if self.date_to:
            decisions = decisions.filter(created_at__lt=_day_start(self.date_to + timedelta(days=1)))
        if self.overturned is True:
            decisions = decisions.filter(OVERTURNED)
        elif self.overturned is False:
            decisions = decisions.filter(model_score__isnull=False).exclude(OVERTURNED)
        if self.state == STANDING:
            decisions = decisions.filter(round__status=ReviewRound.Status.DECIDED)
        elif self.state == UNDONE:
            decisions = decisions.filter(round__status=ReviewRound.Status.UNDONE)
        return decisions


def decisions_list(*, viewer: AbstractBaseUser, filters: DecisionFilters) -> QuerySet[Decision]:
    """The decisions ``viewer`` may see that match ``filters``, newest first."""
    return (
        filters.apply(decisions_visible_to(viewer))
        .select_related("moderator", "round", "upload")
        .order_by("-created_at", "-id")
    )


def decisions_undone_for(decisions: list[Decision]) -> dict[int, list[Decision]]:
    """For each standing decision on the page, the same moderator's undone decisions on the same
    upload (shown under it instead of taking a row), newest first."""
    if not decisions:
        return {}
    uploads = {d.upload_id for d in decisions}
    undone = defaultdict(list)
    for d in (
        Decision.objects.filter(upload_id__in=uploads, round__status=ReviewRound.Status.UNDONE)
        .filter(moderator_id__in={d.moderator_id for d in decisions})
        .order_by("-created_at", "-id")
    ):
        undone[(d.upload_id, d.moderator_id)].append(d)
    return {
        d.pk: [u for u in undone[(d.upload_id, d.moderator_id)] if u.created_at <= d.created_at]
        for d in decisions
        if d.round.status == ReviewRound.Status.DECIDED
    }


def is_overturned(decision: Decision) -> bool | None:
    if decision.model_score is None:
        return None
    return (decision.label == Decision.Label.HARMFUL) != (decision.model_score >= MODEL_LEAN)
