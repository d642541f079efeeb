"""Threshold policies: versioned, never edited; the newest one routes new scores."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max

from moderation.models import ThresholdPolicy

# Cold-start defaults, measured rather than guessed (docs/thresholds.md, bench/baseline_thresholds.py):
# - weapon: chosen on the train+val part of a 1,666-photo weapons-vs-safe benchmark as the largest
#   approve_below that keeps >= 95% of harmful photos out of auto-approve and the smallest
#   reject_from whose auto-rejects are >= 98% precise. On the held-out test part: 97.6% of harmful
#   photos kept out of auto-approve, 68% of safe photos auto-approved, auto-reject 97% precise.
# - nudity: open_nsfw's authors suggest < 0.2 safe and > 0.8 NSFW.
DEFAULT_THRESHOLDS: dict[str, dict[str, float]] = {
    "weapon": {"approve_below": 0.002, "reject_from": 0.4},
    "nudity": {"approve_below": 0.2, "reject_from": 0.8},
}
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
