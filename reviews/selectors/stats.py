"""Moderator statistics, computed by the database.

Every figure counts *standing* decisions (their round still decided); decisions the moderator
undid are counted apart (``undone``) and only in the active hours, as time spent working.

- *decisions per hour*: decisions divided by the clock hours in which the moderator decided
  anything (an active hour), so breaks do not count against anyone;
- *agreement with the model*: the share of decisions whose label matches the model's lean at the
  time (harmful when its harmful score was at least 0.5);
- *agreement with other moderators*: over the moderator's standing decisions on uploads that
  another moderator also decided (second reviews, audits of human decisions, repeats), the share
  whose label matches the other moderator's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth import get_user_model
from django.db.models import Case, Count, Exists, FloatField, IntegerField, OuterRef, Q, Sum, When
from django.db.models.functions import TruncHour

from reviews.models import Decision, ReviewRound

MODEL_LEAN = 0.5


@dataclass(frozen=True)
class ModeratorStats:
    username: str
    decisions: int  # standing
    undone: int
    rejected: int
    active_hours: int
    per_hour: float
    mean_seconds: float | None
    model_agreement: float | None
    peer_compared: int
    peer_agreement: float | None


def moderator_stats(
    *, since: datetime, until: datetime, moderator_ids: list[int] | None = None
) -> list[ModeratorStats]:
    decisions = Decision.objects.filter(created_at__gte=since, created_at__lt=until)
    if moderator_ids is not None:
        decisions = decisions.filter(moderator_id__in=moderator_ids)
    agrees_with_model = Case(
        When(Q(label="harmful", model_score__gte=MODEL_LEAN) | Q(label="safe", model_score__lt=MODEL_LEAN), then=1),
        default=0,
        output_field=IntegerField(),
    )
    others = Decision.objects.filter(upload=OuterRef("upload"), round__status=ReviewRound.Status.DECIDED).exclude(
        moderator=OuterRef("moderator")
    )
    standing = decisions.filter(round__status=ReviewRound.Status.DECIDED).annotate(
        has_peer=Exists(others), peer_agrees=Exists(others.filter(label=OuterRef("label")))
    )
    kept = Q(round__status=ReviewRound.Status.DECIDED)
    undone = Q(round__status=ReviewRound.Status.UNDONE)
    base = (
        decisions.values("moderator")
        .annotate(
            n=Count("id", filter=kept),
            undone=Count("id", filter=undone),
            rejected=Count("id", filter=kept & Q(label="harmful")),
            hours=Count(TruncHour("created_at"), distinct=True),
            scored=Count("id", filter=kept & Q(model_score__isnull=False)),
            with_model=Sum(agrees_with_model, filter=kept & Q(model_score__isnull=False)),
            spent=Sum("time_spent_ms", filter=kept, output_field=FloatField()),
            timed=Count("time_spent_ms", filter=kept),
        )
        .order_by()
    )
    peers = {
        row["moderator"]: row
        for row in standing.values("moderator")
        .annotate(
            compared=Count("id", filter=Q(has_peer=True)),
            agreed=Count("id", filter=Q(has_peer=True, peer_agrees=True)),
        )
        .order_by()
    }
    names = dict(get_user_model().objects.filter(pk__in=[r["moderator"] for r in base]).values_list("pk", "username"))
    rows = []
    for row in base:
        peer = peers.get(row["moderator"], {"compared": 0, "agreed": 0})
        rows.append(
            ModeratorStats(
                username=names[row["moderator"]],
                decisions=row["n"],
                undone=row["undone"],
                rejected=row["rejected"],
                active_hours=row["hours"],
                per_hour=row["n"] / row["hours"] if row["hours"] else 0.0,
                mean_seconds=(row["spent"] / row["timed"] / 1000) if row["timed"] else None,
                model_agreement=(row["with_model"] / row["scored"]) if row["scored"] else None,
                peer_compared=peer["compared"],
                peer_agreement=(peer["agreed"] / peer["compared"]) if peer["compared"] else None,
            )
        )
    return sorted(rows, key=lambda r: (-r.decisions, r.username))
