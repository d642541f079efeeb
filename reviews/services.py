"""Moderator decisions."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from moderation.models import Upload
from reviews.models import Decision


class DecisionConflict(Exception):
    """The upload is no longer waiting for a human (someone else decided it first)."""


def decision_create(
    *,
    upload_id: str,
    moderator: AbstractBaseUser,
    label: str,
    category: str = "",
    note: str = "",
    time_spent_ms: int | None = None,
) -> Decision:
    """Record a moderator's label and finish the upload (approved if safe, rejected if harmful).

    The upload must be ``queued`` or ``failed``. The status change is a conditional update that
    must change exactly one row, so two moderators deciding at once get one decision and one
    :class:`DecisionConflict`, never two decisions.
    """
    if label not in Decision.Label.values:
        raise ValueError(f"label must be one of {Decision.Label.values}")
    now = timezone.now()
    with transaction.atomic():
        upload = Upload.objects.select_related("score").get(pk=upload_id)
        status_before = upload.status
        changed = Upload.objects.filter(pk=upload.pk, status__in=Upload.AWAITING_HUMAN).update(
            status=Upload.Status.REJECTED if label == Decision.Label.HARMFUL else Upload.Status.APPROVED,
            decided_by=Upload.DecidedBy.HUMAN,
            decided_at=now,
            updated_at=now,
        )
        if changed != 1:
            raise DecisionConflict("This image was already decided.")
        score = upload.score
        return Decision.objects.create(
            upload=upload,
            moderator=moderator,
            label=label,
            category=category,
            note=note,
            model_version_id=score.model_version_id if score else None,
            model_score=score.harmful_score if score else None,
            model_category_scores=score.category_scores if score else None,
            upload_status_before=status_before,
            time_spent_ms=time_spent_ms,
        )
