"""Accept an image or a video: validate it, store it under random names, record it, enqueue scoring."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from contextlib import closing
from typing import IO, TypeVar

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.template.defaultfilters import filesizeformat

from media.video import VideoLimits, looks_like_video
from moderation.imaging import NOT_AN_IMAGE, ImageRejected, InspectedImage, inspect_image
from moderation.models import Upload
from moderation.videos import InspectedVideo, VideoRejected, inspect_video

logger = logging.getLogger(__name__)

MAX_METADATA_BYTES = 16 * 1024
NEITHER = "The file is not a JPEG, PNG, WebP or GIF image, nor an MP4, MOV, WebM or MKV video."
T = TypeVar("T")


class UploadRejected(ValueError):
    """Bad input; the message is safe to show to the submitter, ``field`` says which input."""

    def __init__(self, message: str, *, field: str = "image") -> None:
        super().__init__(message)
        self.field = field


class UndecodableImage(Exception):
    """The stored original is gone or does not decode: final, retrying will not help."""


def original_decode(upload: Upload, decode: Callable[[bytes], T]) -> T:
    """Read ``upload``'s stored original and hand the bytes to ``decode``.

    A read error other than a missing file propagates (storage can be a network service, worth a
    retry); a missing file, or any error from ``decode``, is :class:`UndecodableImage`."""
    try:
        with default_storage.open(upload.original.name, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        raise UndecodableImage("the stored original is missing") from None
    try:
        return decode(data)
    except Exception as exc:
        raise UndecodableImage(f"the stored original cannot be decoded ({type(exc).__name__})") from None


def scoring_enqueue(upload_id: uuid.UUID, *, countdown: float | None = None) -> None:
    from moderation.tasks import score_upload

    score_upload.apply_async((str(upload_id),), countdown=countdown)


def upload_create(
    *,
    submitter: AbstractBaseUser,
    file: IO[bytes],
    filename: str = "",
    external_id: str = "",
    metadata: dict | None = None,
) -> tuple[Upload, bool]:
    """Store a validated image and enqueue its scoring once the row is committed.

    Returns ``(upload, created)``. A repeated ``external_id`` from the same submitter returns the
    first upload with ``created=False`` and stores nothing: platform retries are idempotent.
    On any error nothing is left behind: no row and no file.

    Must run outside any transaction the caller might still roll back (files are not
    transactional; this function removes them on its own failure only).
    """
    metadata = fields_check(external_id=external_id, metadata=metadata)
    if existing := upload_submitted_before(submitter=submitter, external_id=external_id):
        return existing, False

    image = media_inspect(file)

    upload_id = uuid.uuid4()
    stored: list[str] = []
    try:
        with closing(image):
            stored = image_store(upload_id=upload_id, image=image)
        with transaction.atomic():
            upload = Upload.objects.create(
                id=upload_id,
                submitter=submitter,
                external_id=external_id,
                original_filename=filename[:255],
                metadata=metadata,
                **image_fields(image, stored),
            )
            transaction.on_commit(lambda: scoring_enqueue(upload_id), robust=True)
    except IntegrityError:
        files_delete(stored)
        if existing := upload_submitted_before(submitter=submitter, external_id=external_id):
            return existing, False  # a concurrent retry with the same external_id won the race
        raise
    except BaseException:
        files_delete(stored)
        raise
    return upload, True


def upload_submitted_before(*, submitter: AbstractBaseUser, external_id: str) -> Upload | None:
    """The submitter's upload with this ``external_id``, if any: platform retries are idempotent."""
    if not external_id:
        return None
    return Upload.objects.filter(submitter=submitter, external_id=external_id).first()


def fields_check(*, external_id: str, metadata: dict | None) -> dict:
    metadata = metadata or {}
    if not isinstance(metadata, dict):
        raise UploadRejected("metadata must be a JSON object.", field="metadata")
    encoded = json.dumps(metadata)
    if len(encoded.encode()) > MAX_METADATA_BYTES:
        raise UploadRejected(f"metadata is larger than {MAX_METADATA_BYTES // 1024} KB.", field="metadata")
    if _has_nul(metadata):
        raise UploadRejected("metadata must not contain NUL characters.", field="metadata")
    if len(external_id) > 255:
        raise UploadRejected("external_id is longer than 255 characters.", field="external_id")
    if "\x00" in external_id:
        raise UploadRejected("external_id must not contain NUL characters.", field="external_id")
    return metadata


def _has_nul(value: object) -> bool:
    """PostgreSQL's jsonb cannot store NUL characters in strings or keys."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def media_inspect(file: IO[bytes]) -> InspectedImage | InspectedVideo:
    """Read and validate an image or a video, each against its own limits. The first bytes
    decide: an MP4/MOV or Matroska/WebM header is a video, anything else must be an image."""
    head = file.read(16)
    if looks_like_video(head):
        return video_inspect(head, file)  # spooled, never read into memory whole
    data = head + file.read(max(0, settings.VIGIL_MAX_UPLOAD_BYTES + 1 - len(head)))
    if not data:
        raise UploadRejected("The file is empty.")
    _check_bytes(data, settings.VIGIL_MAX_UPLOAD_BYTES, "file")
    try:
        return image_inspect(data)
    except UploadRejected as exc:
        if str(exc) == NOT_AN_IMAGE:
            raise UploadRejected(NEITHER) from None
        raise


def _check_bytes(data: bytes, limit: int, kind: str) -> None:
    if len(data) > limit:
        raise UploadRejected(f"The {kind} is larger than the {filesizeformat(limit)} limit.")


def video_inspect(head: bytes, rest: IO[bytes]) -> InspectedVideo:
    """Validate a video (its first bytes, then the rest of the stream) against the configured
    limits; :class:`UploadRejected` says why not. Close the result when done with it."""
    limits = VideoLimits(
        max_seconds=settings.VIGIL_MAX_VIDEO_SECONDS,
        max_pixels=settings.VIGIL_MAX_VIDEO_PIXELS,
        max_fps=settings.VIGIL_MAX_VIDEO_FPS,
    )
    try:
        return inspect_video(head, rest, limits=limits, max_bytes=settings.VIGIL_MAX_VIDEO_BYTES)
    except VideoRejected as exc:
        raise UploadRejected(str(exc)) from None


def image_inspect(data: bytes) -> InspectedImage:
    """Validate image bytes against the configured limits; :class:`UploadRejected` says why not."""
    try:
        return inspect_image(
            data, max_pixels=settings.VIGIL_MAX_IMAGE_PIXELS, max_frames=settings.VIGIL_MAX_IMAGE_FRAMES
        )
    except ImageRejected as exc:
        raise UploadRejected(str(exc)) from None


def image_store(*, upload_id: uuid.UUID, image: InspectedImage | InspectedVideo) -> list[str]:
    """Save the original under a name only the upload id gives; returns the stored names. The
    display derivative and the perceptual hash come later, from the worker (services/display.py)."""
    shard = upload_id.hex[:2]
    return [default_storage.save(f"originals/{shard}/{upload_id.hex}.{image.extension}", image.content())]


def image_fields(image: InspectedImage | InspectedVideo, stored: list[str]) -> dict:
    """The Upload columns that describe a stored image or video."""
    video = isinstance(image, InspectedVideo)
    return {
        "kind": Upload.Kind.VIDEO if video else Upload.Kind.IMAGE,
        "duration_seconds": round(image.info.duration, 3) if video else None,
        "original": stored[0],
        "sha256": image.sha256,
        "format": image.format,
        "width": image.width,
        "height": image.height,
        "frames": image.frames,
        "byte_size": image.byte_size,
    }


def files_delete(names: list[str]) -> None:
    for name in names:
        try:
            default_storage.delete(name)
        except Exception:  # OSError on disk; botocore's errors on object storage
            logger.exception("could not remove %s after a failed upload", name)
