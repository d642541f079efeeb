"""The display derivative moderators and submitters see, made from the stored original when it
is first needed: by the worker for uploads it sends to humans, otherwise on first view. Intake
stores only the original, which keeps the upload path to a few milliseconds of checking.

For an animated image the derivative shows the frame the routing score found worst (frame 0
until it is scored); its name says which frame it shows, so a derivative made before scoring is
replaced once the worst frame is known. Single frames for stepping through an animation are
re-encoded on request (:func:`frame_webp`) and not stored."""

from __future__ import annotations

import logging
import re
from datetime import timedelta

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone

from moderation.imaging import display_webp, video_still_webp
from moderation.models import Upload
from moderation.services.intake import UndecodableImage, original_decode

logger = logging.getLogger(__name__)

# "-f3.webp", or "-f3_AbC1234.webp" when the storage had to pick another name.
FRAME_SUFFIX = re.compile(r"-f(\d+)(?:_[A-Za-z0-9]+)?\.webp$")


class DisplayUnavailable(Exception):
    """The original is missing or cannot be decoded, or has no such frame: there is nothing to show."""


def display_frame(upload: Upload) -> int:
    """The frame the display derivative shows: the worst frame of the routing score for an
    animated upload, else 0 (no query for a still image)."""
    if upload.frames <= 1:
        return 0
    worst = Upload.objects.filter(pk=upload.pk).values_list("score__worst_frame", flat=True).first()
    return worst or 0


def _shown_frame(name: str) -> int:
    match = FRAME_SUFFIX.search(name)
    return int(match.group(1)) if match else 0


def _webp(upload: Upload, frame: int) -> bytes:
    if not upload.original:
        raise DisplayUnavailable("no image has been stored yet")
    if upload.lease_interruptions >= settings.VIGIL_SCORE_MAX_INTERRUPTIONS:
        # Decoding it killed workers (services/scoring.py): not here too. The original downloads.
        raise DisplayUnavailable("decoding this file stopped workers; it is not decoded again")
    max_side = settings.VIGIL_DISPLAY_MAX_SIDE
    if upload.kind == Upload.Kind.VIDEO:
        at = sampled_time(upload, frame)
        decode = lambda data: video_still_webp(data, at=at, max_side=max_side)  # noqa: E731
    else:
        decode = lambda data: display_webp(data, max_side=max_side, frame=frame)  # noqa: E731
    try:
        return original_decode(upload, decode)
    except UndecodableImage as exc:
        raise DisplayUnavailable(str(exc)) from None


def sampled_time(upload: Upload, index: int) -> float:
    """The time of a video's sampled frame ``index`` in its routing score (0 s for frame 0 before
    it is scored)."""
    frames = Upload.objects.filter(pk=upload.pk).values_list("score__frames", flat=True).first() or []
    for frame in frames:
        if frame["index"] == index:
            return frame["time"]
    if index == 0:
        return 0.0
    raise DisplayUnavailable(f"the video has no sampled frame {index}")


def display_ensure(*, upload: Upload) -> str:
    """The stored name of ``upload``'s display derivative, made now if there is none yet or it
    shows another frame than :func:`display_frame`.

    Safe when two requests race: one name wins the conditional update, the other file is removed.
    """
    current = upload.display.name if upload.display else ""
    frame = display_frame(upload)
    if current and _shown_frame(current) == frame:
        return current
    webp = _webp(upload, frame)
    suffix = f"-f{frame}" if frame else ""
    name = default_storage.save(f"display/{upload.pk.hex[:2]}/{upload.pk.hex}{suffix}.webp", ContentFile(webp))
    if Upload.objects.filter(pk=upload.pk, display=current).update(display=name) != 1:
        default_storage.delete(name)
        upload.refresh_from_db(fields=["display"])
        return upload.display.name
    if current:
        default_storage.delete(current)
    upload.display = name
    return name


def frame_webp(*, upload: Upload, index: int) -> bytes:
    """Frame ``index`` of ``upload``, re-encoded like the display derivative (not stored)."""
    if upload.kind != Upload.Kind.VIDEO and not 0 <= index < upload.frames:
        raise DisplayUnavailable(f"the image has no frame {index}")  # a video's: sampled_time says
    return _webp(upload, index)


CATCH_UP_WINDOW = timedelta(minutes=15)
CATCH_UP_TRIES = 4


def displays_catch_up(*, limit: int) -> int:
    """Make the derivatives a busy worker put off (a batch routes first: services/scoring.py):
    up to ``limit`` queued uploads routed in the last :data:`CATCH_UP_WINDOW` that have none, most
    recent first. Called by a worker that found no other upload waiting to be scored; one indexed
    query when there is nothing to do. Older ones, and audit samples, get theirs on first view."""
    since = timezone.now() - CATCH_UP_WINDOW
    # A few more than asked: one whose original cannot be read must not keep the others waiting.
    missing = Upload.objects.filter(updated_at__gte=since, status=Upload.Status.QUEUED, display="").order_by(
        "-updated_at"
    )[: CATCH_UP_TRIES * limit]
    made = 0
    for upload in missing:
        display_prepare(upload=upload)
        made += bool(upload.display)
        if made >= limit:
            break
    return made


def display_prepare(*, upload: Upload) -> None:
    """Make the derivative ahead of a moderator's first look; a failure only logs (the view
    tries again when the image is requested)."""
    try:
        display_ensure(upload=upload)
    except DisplayUnavailable as exc:
        logger.info("no display derivative for upload %s: %s", upload.pk, exc)
    except Exception:
        logger.exception("making the display derivative of upload %s failed", upload.pk)
