"""The display derivative moderators and submitters see, made from the stored original when it
is first needed: by the worker for uploads it sends to humans, otherwise on first view. Intake
stores only the original, which keeps the upload path to a few milliseconds of checking."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from moderation.imaging import display_webp
from moderation.models import Upload
from moderation.services.intake import UndecodableImage, original_decode

logger = logging.getLogger(__name__)


class DisplayUnavailable(Exception):
    """The original is missing or cannot be decoded: there is nothing to show."""


def display_ensure(*, upload: Upload) -> str:
    """The stored name of ``upload``'s display derivative, made now if there is none yet.

    Safe when two requests race: one name wins the conditional update, the other file is removed.
    """
    if upload.display:
        return upload.display.name
    if not upload.original:
        raise DisplayUnavailable("no image has been stored yet")
    try:
        webp = original_decode(upload, lambda data: display_webp(data, max_side=settings.VIGIL_DISPLAY_MAX_SIDE))
    except UndecodableImage as exc:
        raise DisplayUnavailable(str(exc)) from None
    name = default_storage.save(f"display/{upload.pk.hex[:2]}/{upload.pk.hex}.webp", ContentFile(webp))
    if Upload.objects.filter(pk=upload.pk, display="").update(display=name) != 1:
        default_storage.delete(name)
        upload.refresh_from_db(fields=["display"])
        return upload.display.name
    upload.display = name
    return name


def display_prepare(*, upload: Upload) -> None:
    """Make the derivative ahead of a moderator's first look; a failure only logs (the view
    tries again when the image is requested)."""
    try:
        display_ensure(upload=upload)
    except DisplayUnavailable as exc:
        logger.info("no display derivative for upload %s: %s", upload.pk, exc)
    except Exception:
        logger.exception("making the display derivative of upload %s failed", upload.pk)
