"""Threshold policies: versioned, never edited; the newest one routes new scores.

Only people change policies: an admin on the threshold page (or a rollback an admin confirms).
A model may *propose* thresholds as a :class:`PolicyDraft`, which routes nothing until an admin
saves it. Every saved version is recorded in the change log (banner, webhook)."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from moderation.ml.baseline import COLD_START_THRESHOLDS
from moderation.models import Change, ModelVersion, PolicyDraft, ThresholdPolicy, policy_categories_without_human_band
from moderation.services.changes import change_record, thresholds_text

# Cold-start defaults for the baseline model, measured rather than guessed (see COLD_START_THRESHOLDS).
DEFAULT_THRESHOLDS = COLD_START_THRESHOLDS
DEFAULT_REASON = "Cold-start defaults measured on a weapons-vs-safe benchmark; open_nsfw authors' 0.2/0.8."


class NoHumanBand(ValidationError):
    """A policy would send no score of some category to a human, and nobody confirmed that."""

    def __init__(self, categories: list[str]) -> None:
        self.categories = categories
        super().__init__(
            f"{', '.join(categories)}: approve_below equals reject_from, so no image of "
            f"{'this category' if len(categories) == 1 else 'these categories'} would ever reach a human. "
            "Confirm that explicitly to save it."
        )


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


def policy_create(
    *,
    thresholds: dict,
    reason: str,
    created_by: AbstractBaseUser | None = None,
    confirm_no_human_band: bool = False,
    action: str = Change.Action.SAVED,
) -> ThresholdPolicy:
    """Save a new policy version; it routes every score from now on.

    A category with ``approve_below == reject_from`` has no human band: every one of its scores is
    decided automatically. That is refused (:class:`NoHumanBand`) unless ``confirm_no_human_band``."""
    clean = validate_thresholds(thresholds)
    if not reason.strip():
        raise ValidationError("Say why the thresholds change.")
    bandless = policy_categories_without_human_band(clean)
    if bandless and not confirm_no_human_band:
        raise NoHumanBand(bandless)
    for _ in range(3):  # two admins saving at once: the unique version makes one retry
        try:
            with transaction.atomic():
                latest = ThresholdPolicy.objects.aggregate(v=Max("version"))["v"] or 0
                policy = ThresholdPolicy.objects.create(
                    version=latest + 1, thresholds=clean, reason=reason.strip(), created_by=created_by
                )
                who = created_by.get_username() if created_by else "the system"
                summary = f"Policy v{policy.version} saved by {who}: {thresholds_text(clean)}."
                if bandless:
                    summary += f" No human band for {', '.join(bandless)} (confirmed)."
                change_record(
                    kind=Change.Kind.POLICY,
                    action=action,
                    summary=f"{summary} Why: {policy.reason}",
                    actor=created_by,
                    policy=policy,
                )
                return policy
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


def policy_draft_propose(*, model_version: ModelVersion) -> PolicyDraft | None:
    """Offer the thresholds suggested for ``model_version`` on its validation data as a draft
    (other categories keep the policy in force), unless they change nothing. Earlier open drafts of
    the same version are superseded. Nothing routes differently until an admin saves a policy."""
    suggested = (model_version.metrics or {}).get("suggested_thresholds")
    if not suggested:
        return None
    current = policy_current()
    thresholds = validate_thresholds({**current.thresholds, **suggested})
    if thresholds == current.thresholds:
        return None
    collapsed = sorted(
        category
        for category, pair in suggested.items()
        if category in thresholds and pair["reject_from"] <= pair["approve_below"]
    )
    warning = (
        f" WARNING: no human band for {', '.join(collapsed)}: saved as is, every such image would be decided "
        "automatically."
        if collapsed
        else ""
    )
    now = timezone.now()
    PolicyDraft.objects.filter(model_version=model_version, status=PolicyDraft.Status.OPEN).update(
        status=PolicyDraft.Status.DISMISSED, resolved_at=now
    )
    return PolicyDraft.objects.create(
        model_version=model_version,
        thresholds=thresholds,
        reason=(
            f"Suggested on validation data for model {model_version.name} (other categories as in policy "
            f"v{current.version}). Check the projection on this model's traffic before saving.{warning}"
        ),
    )


def policy_drafts_open() -> list[PolicyDraft]:
    return list(
        PolicyDraft.objects.filter(status=PolicyDraft.Status.OPEN).select_related("model_version").order_by("-id")[:5]
    )


def policy_draft_resolve(*, draft: PolicyDraft, user: AbstractBaseUser, policy: ThresholdPolicy | None = None) -> bool:
    """Close an open draft: saved as ``policy``, or dismissed when ``policy`` is None."""
    status = PolicyDraft.Status.APPLIED if policy is not None else PolicyDraft.Status.DISMISSED
    changed = PolicyDraft.objects.filter(pk=draft.pk, status=PolicyDraft.Status.OPEN).update(
        status=status, policy=policy, resolved_by=user, resolved_at=timezone.now()
    )
    return changed == 1


def policy_in_force_at(when) -> ThresholdPolicy | None:
    """The policy that routed at time ``when`` (the newest created by then)."""
    return ThresholdPolicy.objects.filter(created_at__lte=when).order_by("-version").first()
