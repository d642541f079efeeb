"""Reopening a decided upload for another human look: an admin from the upload page, or a
moderator changing one of their own decisions that is too old to undo.

Reopening never edits a decision and leaves the upload as it stands (approved or rejected) until
the new round is decided, like an audit: the new decision then stands. The decision that is
changed keeps its round ``decided``; the newer round supersedes it.
"""

from __future__ import annotations

from uuid import UUID

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from moderation.models import Upload
from reviews.models import ReviewRound
from reviews.selectors.decisions import decisions_visible_to
from reviews.services.claims import lease_until
from reviews.services.decisions import DecisionConflict, decision_undo, decisions_recent
from reviews.services.rounds import round_open

NOTE_MAX = 500


class ReopenRefused(DecisionConflict):
    """The upload cannot be reopened now; the message says why."""


def upload_reopen(*, upload_id: UUID | str, actor: AbstractBaseUser, note: str, claim: bool = False) -> ReviewRound:
    """Open a ``reopen`` round on a decided upload, recording who asked and why. With ``claim`` the
    round is leased to ``actor`` at once (they decide it next); otherwise it waits in the queue."""
    note = (note or "").strip()
    if not note:
        raise ReopenRefused("Say why the image is reopened.")
    if len(note) > NOTE_MAX:
        raise ReopenRefused(f"Keep the reason under {NOTE_MAX} characters.")
    with transaction.atomic():
        locked = Upload.objects.select_for_update(of=("self",)).select_related("score", "policy")
        upload = locked.filter(pk=upload_id).first()
        if upload is None:
            raise ReopenRefused("No such upload.")
        if upload.review_rounds.filter(status=ReviewRound.Status.OPEN).exists():
            raise ReopenRefused("This image is already waiting for review.")
        if upload.status not in (Upload.Status.APPROVED, Upload.Status.REJECTED):
            status = upload.get_status_display().lower()
            raise ReopenRefused(f"This upload is not decided yet ({status}); only a decided one can be reopened.")
        lease = {"claimed_by": actor, "lease_expires_at": lease_until(timezone.now())} if claim else {}
        return round_open(upload=upload, reason=ReviewRound.Reason.REOPEN, reopened_by=actor, reopen_note=note, **lease)


def decision_change(*, decision_id: int, actor: AbstractBaseUser) -> ReviewRound:
    """Let ``actor`` decide a standing decision's image again. Their own recent decision is undone
    (the upload goes back to how it was); an older one, or an admin's change of someone else's,
    reopens the upload in a round leased to ``actor``. Refused once the image was decided again."""
    decision = decisions_visible_to(actor).select_related("round").filter(pk=decision_id).first()
    if decision is None:
        raise DecisionConflict("No such decision among those you can see.")
    if decision.round.status != ReviewRound.Status.DECIDED:
        raise DecisionConflict("That decision was undone; its image was decided again or is waiting for review.")
    later = ReviewRound.objects.filter(
        upload_id=decision.upload_id, number__gt=decision.round.number, status=ReviewRound.Status.DECIDED
    )
    if later.exists():
        raise DecisionConflict("This image was decided again since; change its latest decision instead.")
    if decision.moderator_id == actor.pk and any(d.pk == decision.pk for d in decisions_recent(moderator=actor)):
        return decision_undo(moderator=actor, decision_id=decision.pk)
    return upload_reopen(
        upload_id=decision.upload_id, actor=actor, note=f"Change of decision #{decision.pk}", claim=True
    )
