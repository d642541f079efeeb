"""Reads for the review queue."""

from __future__ import annotations

from django.db.models import QuerySet

from moderation.models import Upload


def queue_uploads() -> QuerySet[Upload]:
    """Uploads waiting for a human, oldest first."""
    return (
        Upload.objects.filter(status__in=Upload.AWAITING_HUMAN)
        .select_related("score__model_version", "submitter")
        .order_by("created_at")
    )


def queue_next_after(upload: Upload) -> Upload | None:
    return queue_uploads().exclude(pk=upload.pk).first()
