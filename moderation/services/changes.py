"""The change log of what routes uploads: every change to the active model, the shadow set or the
threshold policy is recorded here, in the transaction that made it. Admins see unacknowledged
changes in a banner; :data:`~moderation.signals.routing_changed` lets integrations tell platforms."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Max

from moderation.models import Change, ChangesSeen, ModelVersion, ThresholdPolicy
from moderation.signals import routing_changed


def change_record(
    *,
    kind: str,
    action: str,
    summary: str,
    actor: AbstractBaseUser | None = None,
    model_version: ModelVersion | None = None,
    policy: ThresholdPolicy | None = None,
) -> Change:
    """Record a change. Call inside the transaction that made it: receivers write in it too."""
    change = Change.objects.create(
        kind=kind, action=action, summary=summary, actor=actor, model_version=model_version, policy=policy
    )
    routing_changed.send(sender=Change, change=change)
    return change


def _seen_up_to(user: AbstractBaseUser) -> int:
    return ChangesSeen.objects.filter(user=user).values_list("last_id", flat=True).first() or 0


def changes_unseen(*, user: AbstractBaseUser, limit: int = 5) -> tuple[int, list[Change]]:
    """How many changes ``user`` has not acknowledged, and the newest ``limit`` of them."""
    unseen = Change.objects.filter(pk__gt=_seen_up_to(user))
    count = unseen.count()
    return count, list(unseen.select_related("actor")[:limit]) if count else []


def changes_acknowledge(*, user: AbstractBaseUser, up_to: int) -> int:
    """Mark changes up to id ``up_to`` seen (never beyond the newest that exists, never backwards:
    a change recorded after the banner was drawn stays unseen). Returns the new mark."""
    newest = Change.objects.aggregate(m=Max("pk"))["m"] or 0
    mark = max(min(up_to, newest), _seen_up_to(user))
    ChangesSeen.objects.update_or_create(user=user, defaults={"last_id": mark})
    return mark


def thresholds_text(thresholds: dict[str, dict[str, float]]) -> str:
    """``nudity 0.2–0.8; weapon 0.1–0.4`` with the exact values."""
    return "; ".join(f"{name} {b['approve_below']:g}–{b['reject_from']:g}" for name, b in sorted(thresholds.items()))
