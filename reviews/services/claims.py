"""Claiming work: expiring leases on review rounds.

A claim is a row lock taken with ``SELECT … FOR UPDATE SKIP LOCKED`` (PostgreSQL; SQLite
serialises writers instead), then a conditional UPDATE that records the lease. Two moderators
never get the same round: a locked row is skipped, and a committed claim no longer matches the
claimable filter. A lease that runs out makes the round claimable again; until someone else
claims it, its holder may still decide it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from reviews.models import MIN_LEASE_SECONDS, QueueSettings, ReviewRound, heartbeat_seconds
from reviews.selectors.queue import Ordering, QueueFilters, rounds_claimable


class ClaimUnavailable(Exception):
    """The round is closed, or another moderator holds it."""


def lease_seconds() -> int:
    """The configured lease, never under the minimum (a row written around ``save()`` too)."""
    return max(QueueSettings.load().lease_seconds, MIN_LEASE_SECONDS)


def lease_until(now) -> timezone.datetime:
    return now + timedelta(seconds=lease_seconds())


def lease_heartbeat_seconds() -> int:
    """How often the open review page renews its claim: a third of the lease, at most 30 s."""
    return heartbeat_seconds(lease_seconds())


def _take(round_ids: list[int], moderator: AbstractBaseUser, now) -> int:
    """Write the lease on rows the caller has locked. The UPDATE repeats the claimable condition,
    so even without the lock a round held by someone else is never taken over."""
    return (
        rounds_claimable(moderator=moderator, now=now)
        .filter(pk__in=round_ids)
        .update(claimed_by=moderator, lease_expires_at=lease_until(now))
    )


def rounds_claim(
    *,
    moderator: AbstractBaseUser,
    filters: QueueFilters | None = None,
    ordering: Ordering = Ordering.UNCERTAIN,
    limit: int = 1,
    skip_ids: Iterable[int] = (),
) -> list[ReviewRound]:
    """Claim up to ``limit`` rounds for ``moderator``, in ``ordering``, renewing any matching
    rounds they already hold first (so a reload does not hand out new work)."""
    now = timezone.now()
    filters = filters or QueueFilters()
    skip_ids = list(skip_ids)
    with transaction.atomic():
        candidates = filters.apply(rounds_claimable(moderator=moderator, now=now)).exclude(pk__in=skip_ids)
        held = list(
            candidates.filter(claimed_by=moderator)
            .select_for_update(of=("self",))
            .order_by(*ordering.order_by)
            .values_list("pk", flat=True)[:limit]
        )
        fresh = []
        if len(held) < limit:
            fresh = list(
                candidates.exclude(pk__in=held)
                .select_for_update(skip_locked=True, of=("self",))
                .order_by(*ordering.order_by)
                .values_list("pk", flat=True)[: limit - len(held)]
            )
        _take(held + fresh, moderator, now)
    rounds = ReviewRound.objects.filter(pk__in=held + fresh, claimed_by=moderator).order_by(*ordering.order_by)
    return list(rounds.select_related("upload__score__model_version", "upload__submitter"))


def round_claim(*, round_id: int, moderator: AbstractBaseUser) -> ReviewRound:
    """Claim one given round (opened from a link), unless someone else holds a live lease on it."""
    now = timezone.now()
    with transaction.atomic():
        round_ = (
            ReviewRound.objects.select_for_update(of=("self",)).select_related("claimed_by").filter(pk=round_id).first()
        )
        if round_ is None or round_.status != ReviewRound.Status.OPEN:
            raise ClaimUnavailable("This image is no longer waiting for review.")
        if round_.excluded_moderator_id == moderator.pk:
            raise ClaimUnavailable("You decided this image before; a second review must come from someone else.")
        holder = round_.claimed_by
        if holder is not None and holder.pk != moderator.pk and round_.lease_expires_at > now:
            raise ClaimUnavailable(f"{holder.get_username()} is reviewing this image right now.")
        _take([round_.pk], moderator, now)
    round_.refresh_from_db()
    return round_


def round_renew(*, round_id: int, moderator: AbstractBaseUser) -> ReviewRound:
    """Extend the lease while the review page is open. Fails once someone else has claimed it."""
    now = timezone.now()
    changed = ReviewRound.objects.filter(pk=round_id, status=ReviewRound.Status.OPEN, claimed_by=moderator).update(
        lease_expires_at=lease_until(now)
    )
    if changed != 1:
        raise ClaimUnavailable("Your claim on this image was lost: it was decided or taken by another moderator.")
    return ReviewRound.objects.get(pk=round_id)


def round_release(*, round_id: int, moderator: AbstractBaseUser) -> bool:
    """Give a claimed round back to the queue (skip). Returns False if the moderator did not hold it."""
    changed = ReviewRound.objects.filter(pk=round_id, status=ReviewRound.Status.OPEN, claimed_by=moderator).update(
        claimed_by=None, lease_expires_at=None
    )
    return changed == 1
