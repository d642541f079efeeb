"""Threshold policies: versioned, never edited; the newest one routes new scores."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max

from moderation.ml.baseline import COLD_START_THRESHOLDS
from moderation.models import ThresholdPolicy

# Cold-start defaults for the baseline model, measured rather than guessed (see COLD_START_THRESHOLDS).
DEFAULT_THRESHOLDS = COLD_START_THRESHOLDS
DEFAULT_REASON = "Cold-start defaults measured on a weapons-vs-safe benchmark; open_nsfw authors' 0.2/0.8."


def validate_thresholds(thresholds: object) -> dict[str, dict[str, float]]:
    """Return a clean copy of ``thresholds`` or raise ValidationError saying what is wrong."""
    if not isinstance(thresholds, dict) or not thresholds:
        raise ValidationError("Thresholds must map each category to approve_below and reject_from.")
    clean: dict[str, dict[str, float]] = {}
    for category, bounds in thresholds.items():
        if not isinstance(bounds, dict) or set(bounds) != {"approve_below", "reject_from"}:
            raise ValidationError(f"{category}: give exactly approve_below and reject_from.")
        try:
            approve, reject = float(bounds["approve_below"]), float(bounds["reject_from"])
        except (TypeError, ValueError):
            raise ValidationError(f"{category}: thresholds must be numbers.") from None
        if not 0.0 <= approve <= reject <= 1.0:
            raise ValidationError(f"{category}: need 0 <= approve_below <= reject_from <= 1.")
        clean[str(category)] = {"approve_below": approve, "reject_from": reject}
    return clean


def policy_create(*, thresholds: dict, reason: str, created_by: AbstractBaseUser | None = None) -> ThresholdPolicy:
    """Save a new policy version; it routes every score from now on."""
    clean = validate_thresholds(thresholds)
    if not reason.strip():
        raise ValidationError("Say why the thresholds change.")
    for _ in range(3):  # two admins saving at once: the unique version makes one retry
        try:
            with transaction.atomic():
                latest = ThresholdPolicy.objects.aggregate(v=Max("version"))["v"] or 0
                return ThresholdPolicy.objects.create(
                    version=latest + 1, thresholds=clean, reason=reason.strip(), created_by=created_by
                )
        except IntegrityError:
            continue
    raise RuntimeError("could not allocate a policy version")


def policy_current() -> ThresholdPolicy:
    """The policy in force; the cold-start defaults are saved as version 1 on first use."""
    policy = ThresholdPolicy.objects.order_by("-version").first()
    if policy is None:
        try:
            with transaction.atomic():
                policy = ThresholdPolicy.objects.create(version=1, thresholds=DEFAULT_THRESHOLDS, reason=DEFAULT_REASON)
        except IntegrityError:
            policy = ThresholdPolicy.objects.get(version=1)
    return policy
