"""Decide once: one keystroke decides the picture under review and its near copies waiting in the
queue (``reviews/selectors/copies.py``), each as its own recorded decision.

Every member gets the full treatment of a decision made alone (``decision_create``: its round
closed, its upload finished, its known-image record, its outcome webhook, a second review of a
reject when those are on), so metrics and the feedback export count members, not groups. The
decisions share a ``group`` id, by which the moderator's undo takes them back together.

A member was seen only as a thumbnail: its decision records ``revealed = False``, no time spent,
and a note naming the picture that was looked at and how near the member was (the group id says
the same to code; the note says it to whoever reads the upload's history).
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from reviews.models import Decision, ReviewRound
from reviews.selectors.copies import round_near_copies
from reviews.selectors.queue import rounds_claimable
from reviews.services.claims import lease_until
from reviews.services.decisions import DecisionConflict, category_default, decision_create

# Why a member the page showed was not decided, in words for the moderator.
GONE = "no longer exists"
CLOSED = "already decided"
EXCLUDED = "needs a second reviewer other than you"
HELD = "being reviewed by another moderator"
NOT_NEAR = "no longer a near copy waiting with it"
UNAVAILABLE = "could not be decided now (being scored again)"


@dataclass
class GroupResult:
    group: uuid.UUID
    decision: Decision  # the picture the moderator looked at
    members: list[Decision] = field(default_factory=list)
    skipped: list[tuple[int, str]] = field(default_factory=list)  # (round id, why)

    @property
    def skipped_summary(self) -> str:
        """``"2 already decided, 1 being reviewed by another moderator"``, or ``""``."""
        counts = Counter(why for _, why in self.skipped)
        return ", ".join(f"{n} {why}" for why, n in counts.most_common())


def _why_not(round_: ReviewRound | None, moderator: AbstractBaseUser, now) -> str:
    if round_ is None:
        return GONE
    if round_.status != ReviewRound.Status.OPEN:
        return CLOSED
    if round_.excluded_moderator_id == moderator.pk:
        return EXCLUDED
    if round_.claimed_by_id not in (None, moderator.pk) and round_.lease_expires_at > now:
        return HELD
    return NOT_NEAR


def _member_note(lead: ReviewRound, member: ReviewRound, note: str) -> str:
    said = (
        f"Group decision: decided with upload {lead.upload_id}, "
        f"of which it is a near copy ({member.copy_distance} bits)."
    )
    return f"{said} {note}" if note else said


def decisions_create_group(
    *,
    round_id: int,
    member_ids: Iterable[int],
    moderator: AbstractBaseUser,
    label: str,
    category: str = "",
    note: str = "",
    time_spent_ms: int | None = None,
    revealed: bool | None = None,
) -> GroupResult:
    """Decide the round ``moderator`` holds, then each of ``member_ids`` (the near copies the page
    showed) with the same label. Each member is checked again (still open, still claimable by
    ``moderator``, still a near copy); one that is not is skipped and said why. Each member is
    claimed with a conditional UPDATE and decided in its own transaction, so one lost on the way
    leaves the others decided. A reject without ``category`` takes each member's own default.

    Raises :class:`DecisionConflict` (nothing decided) when the round itself cannot be decided.
    """
    if label not in Decision.Label.values:
        raise ValueError(f"label must be one of {Decision.Label.values}")
    member_ids = list(dict.fromkeys(member_ids))
    lead = ReviewRound.objects.filter(pk=round_id).first()
    if lead is None:
        raise DecisionConflict("This review no longer exists.")
    now = timezone.now()
    near = {r.pk: r for r in round_near_copies(round_=lead, moderator=moderator, among=member_ids, now=now)}
    group = uuid.uuid4()
    result = GroupResult(
        group=group,
        decision=decision_create(
            round_id=lead.pk,
            moderator=moderator,
            label=label,
            category=category,
            note=note,
            time_spent_ms=time_spent_ms,
            revealed=revealed,
            group=group,
        ),
    )
    others = {r.pk: r for r in ReviewRound.objects.filter(pk__in=[pk for pk in member_ids if pk not in near])}
    for pk in member_ids:
        member = near.get(pk)
        if member is None:
            result.skipped.append((pk, _why_not(others.get(pk), moderator, now)))
            continue
        chosen = category or (category_default(member) if label == Decision.Label.HARMFUL else "")
        try:
            with transaction.atomic():
                claimed = (
                    rounds_claimable(moderator=moderator)
                    .filter(pk=pk)
                    .update(claimed_by=moderator, lease_expires_at=lease_until(timezone.now()))
                )
                if claimed != 1:
                    raise DecisionConflict("taken meanwhile")
                result.members.append(
                    decision_create(
                        round_id=pk,
                        moderator=moderator,
                        label=label,
                        category=chosen,
                        note=_member_note(lead, member, note),
                        revealed=False,
                        group=group,
                    )
                )
        except DecisionConflict:
            fresh = ReviewRound.objects.filter(pk=pk).first()
            why = _why_not(fresh, moderator, timezone.now())
            result.skipped.append((pk, UNAVAILABLE if why == NOT_NEAR else why))
    return result
