"""Re-route the human queue under a new threshold policy."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from moderation.models import Change, ThresholdPolicy, Upload
from moderation.routing import Route, route_scores
from moderation.services.changes import change_record
from moderation.services.outcomes import outcome_announce
from reviews.models import ReviewRound
from reviews.services.rounds import queue_keys


@dataclass
class RerouteResult:
    approved: int = 0
    rejected: int = 0
    still_queued: int = 0
    held: int = 0  # being reviewed right now: left alone


def queue_reroute(
    *, policy: ThresholdPolicy, user: AbstractBaseUser | None = None, batch_size: int = 500
) -> RerouteResult:
    """Apply ``policy`` to uploads the model sent to humans (open ``model`` rounds). Those the new
    thresholds decide are finished automatically and their round cancelled; the rest stay queued
    with fresh queue keys. Rounds a moderator holds right now, failed uploads, audits and second
    reviews are left alone. Each upload changes in its own short transaction, by a conditional
    update from ``queued``, so a moderator deciding at the same moment wins cleanly. The re-route
    is recorded in the change log (admins' banner, ``policy.changed`` webhook)."""
    result = RerouteResult()
    now = timezone.now()
    open_model_rounds = ReviewRound.objects.filter(
        status=ReviewRound.Status.OPEN, reason=ReviewRound.Reason.MODEL, upload__score__isnull=False
    )
    result.held = open_model_rounds.filter(claimed_by__isnull=False, lease_expires_at__gt=now).count()
    free = open_model_rounds.filter(Q(claimed_by__isnull=True) | Q(lease_expires_at__lte=now))
    last_id = 0
    while True:
        batch = list(free.filter(pk__gt=last_id).select_related("upload__score").order_by("pk")[:batch_size])
        if not batch:
            _record(policy, user, result)
            return result
        last_id = batch[-1].pk
        for round_ in batch:
            _reroute_one(round_, policy, result)


def _record(policy: ThresholdPolicy, user: AbstractBaseUser | None, result: RerouteResult) -> None:
    who = user.get_username() if user else "the system"
    change_record(
        kind=Change.Kind.POLICY,
        action=Change.Action.REROUTED,
        summary=(
            f"Queue re-routed under policy v{policy.version} by {who}: {result.approved} approved, "
            f"{result.rejected} rejected, {result.still_queued} still queued, {result.held} left with moderators."
        ),
        actor=user,
        policy=policy,
    )


def _reroute_one(round_: ReviewRound, policy: ThresholdPolicy, result: RerouteResult) -> None:
    upload = round_.upload
    outcome = route_scores(upload.score.category_scores, policy.thresholds)
    now = timezone.now()
    with transaction.atomic():
        if outcome.route == Route.QUEUE:
            Upload.objects.filter(pk=upload.pk, status=Upload.Status.QUEUED).update(
                policy=policy, status_reason=outcome.reason[:255], updated_at=now
            )
            upload.policy = policy
            keys = queue_keys(upload)  # both depend on the policy
            ReviewRound.objects.filter(pk=round_.pk, status=ReviewRound.Status.OPEN).update(
                uncertainty=keys["uncertainty"], disagreement=keys["disagreement"]
            )
            result.still_queued += 1
            return
        # Only a round nobody claimed since the batch was read may be cancelled.
        cancelled = (
            ReviewRound.objects.filter(pk=round_.pk, status=ReviewRound.Status.OPEN)
            .filter(Q(claimed_by__isnull=True) | Q(lease_expires_at__lte=now))
            .update(status=ReviewRound.Status.CANCELLED, closed_at=now)
        )
        if cancelled != 1:
            result.held += 1
            return
        finished = Upload.objects.filter(pk=upload.pk, status=Upload.Status.QUEUED).update(
            status=outcome.route.value,
            decided_by=Upload.DecidedBy.AUTO,
            decided_at=now,
            policy=policy,
            status_reason=f"re-routed under policy v{policy.version}: {outcome.reason}"[:255],
            updated_at=now,
        )
        if finished != 1:
            transaction.set_rollback(True)
            return
        outcome_announce(upload_id=upload.pk)
        if outcome.route == Route.APPROVE:
            result.approved += 1
        else:
            result.rejected += 1
