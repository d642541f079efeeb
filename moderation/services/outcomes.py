"""Announce outcomes a submitter should hear about (webhooks listen), from whichever side made them."""

from __future__ import annotations

import uuid

from moderation.models import Upload
from moderation.signals import UPLOAD_DECIDED, UPLOAD_REOPENED, upload_outcome


def outcome_announce(*, upload_id: uuid.UUID, event: str | None = None) -> None:
    """Send :data:`~moderation.signals.upload_outcome` for the upload as it stands now.

    Call inside the transaction that made the change. Without ``event``, a final upload is
    ``upload.decided`` and one awaiting a moderator is ``upload.reopened``."""
    outcome_send(upload=Upload.objects.select_related("score__model_version").get(pk=upload_id), event=event)


def outcome_send(*, upload: Upload, event: str | None = None) -> None:
    """The same for an upload already loaded as it stands (with ``score__model_version``)."""
    if event is None:
        event = UPLOAD_DECIDED if upload.is_final else UPLOAD_REOPENED
    upload_outcome.send(sender=Upload, upload=upload, event=event)
