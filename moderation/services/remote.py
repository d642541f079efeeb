"""Uploads submitted by URL: recorded at once, fetched by a worker, then scored like any upload.

The web process only checks the URL's form (and refuses an IP-literal or ``localhost`` host that
is not public); the worker resolves the name, refuses non-public addresses unless allow-listed,
and reads at most ``VIGIL_MAX_UPLOAD_BYTES`` within ``VIGIL_FETCH_TIMEOUT_SECONDS``
(``net.outbound``). An URL that cannot be fetched ends ``unavailable``, with the reason.
"""

from __future__ import annotations

import io
import logging
import posixpath
import uuid
from contextlib import closing
from urllib.parse import unquote, urlsplit

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from moderation.models import Upload
from moderation.services.intake import (
    UploadRejected,
    fields_check,
    files_delete,
    image_fields,
    image_store,
    media_inspect,
    scoring_enqueue,
    upload_submitted_before,
)
from moderation.services.leases import (
    LEASE_CLEARED,
    lease_kept_alive,
    lease_owner_name,
    upload_lease_claim,
    upload_lease_release,
)
from moderation.services.outcomes import outcome_announce
from moderation.signals import UPLOAD_UNAVAILABLE
from net import outbound

logger = logging.getLogger(__name__)

RETRY_STATUSES = {408, 425, 429, 500, 502, 503, 504}
ACCEPT = (
    "image/jpeg, image/png, image/webp, image/gif;q=0.9, video/mp4, video/webm, video/quicktime, "
    "video/x-matroska;q=0.9, */*;q=0.1"
)


class FetchRetry(Exception):
    """A transient failure: the task tries again later."""


def _enqueue_fetch(upload_id: uuid.UUID) -> None:
    from moderation.tasks import fetch_remote_upload

    fetch_remote_upload.delay(str(upload_id))


def upload_create_from_url(
    *,
    submitter: AbstractBaseUser,
    url: str,
    external_id: str = "",
    metadata: dict | None = None,
) -> tuple[Upload, bool]:
    """Record an upload to be fetched from ``url``; returns ``(upload, created)`` like
    :func:`~moderation.services.intake.upload_create` (a repeated external_id is idempotent)."""
    metadata = fields_check(external_id=external_id, metadata=metadata)
    try:
        outbound.literal_refusal(url)
    except outbound.OutboundRefused as exc:
        raise UploadRejected(str(exc), field="url") from None
    url = url.strip()
    if existing := upload_submitted_before(submitter=submitter, external_id=external_id):
        return existing, False
    name = "".join(c for c in posixpath.basename(unquote(urlsplit(url).path)) if c.isprintable())
    try:
        with transaction.atomic():
            upload = Upload.objects.create(
                submitter=submitter,
                status=Upload.Status.FETCHING,
                source_url=url,
                external_id=external_id,
                original_filename=name[:255],
                metadata=metadata,
            )
            transaction.on_commit(lambda: _enqueue_fetch(upload.pk), robust=True)
    except IntegrityError:
        if existing := upload_submitted_before(submitter=submitter, external_id=external_id):
            return existing, False  # a concurrent retry with the same external_id won the race
        raise
    return upload, True


def upload_fetch(*, upload_id: uuid.UUID | str, attempt: int = 1, worker: str | None = None) -> str:
    """Fetch a ``fetching`` upload's URL, store the image and hand it to scoring.

    Raises :class:`FetchRetry` on a transient failure while attempts remain; any other failure
    marks the upload ``unavailable``. Returns the upload's status. Safe to run twice: the fetch
    holds the upload's lease (services/leases.py) like scoring, and a URL whose fetches killed
    their worker ``VIGIL_SCORE_MAX_INTERRUPTIONS`` times ends ``unavailable``."""
    upload = Upload.objects.get(pk=upload_id)
    if upload.status != Upload.Status.FETCHING:
        return upload.status
    owner = lease_owner_name(worker)
    if not upload_lease_claim(upload_id=upload.pk, status=Upload.Status.FETCHING, owner=owner):
        return Upload.objects.values_list("status", flat=True).get(pk=upload.pk)  # in hand elsewhere
    upload.refresh_from_db(fields=["lease_interruptions"])
    if upload.lease_interruptions >= settings.VIGIL_SCORE_MAX_INTERRUPTIONS:
        return _mark_unavailable(
            upload, f"Fetching stopped its worker {upload.lease_interruptions} times (killed mid-task)."
        )
    # Touching the row also keeps the age-based sweep away for a while after a retry releases it.
    Upload.objects.filter(pk=upload.pk, status=Upload.Status.FETCHING).update(updated_at=timezone.now())
    try:
        with lease_kept_alive(upload_id=upload.pk, owner=owner):
            return _fetch(upload, attempt)
    finally:
        upload_lease_release(upload_id=upload.pk, owner=owner)


def _fetch(upload: Upload, attempt: int) -> str:
    last_attempt = attempt >= settings.VIGIL_FETCH_MAX_ATTEMPTS
    try:
        response = outbound.request(
            "GET",
            upload.source_url,
            headers={"Accept": ACCEPT},
            timeout=settings.VIGIL_FETCH_TIMEOUT_SECONDS,
            max_bytes=max(settings.VIGIL_MAX_UPLOAD_BYTES, settings.VIGIL_MAX_VIDEO_BYTES),
            max_redirects=settings.VIGIL_FETCH_MAX_REDIRECTS,
        )
    except outbound.OutboundUnavailable as exc:
        if not last_attempt:
            raise FetchRetry(str(exc)) from None
        return _mark_unavailable(upload, f"Could not fetch the URL after {attempt} attempts: {exc}")
    except outbound.OutboundRefused as exc:
        return _mark_unavailable(upload, f"Could not fetch the URL: {exc}")
    except Exception as exc:  # anything unforeseen: retried like a network failure, never stuck
        logger.exception("fetching upload %s failed unexpectedly", upload.pk)
        if not last_attempt:
            raise FetchRetry(type(exc).__name__) from None
        return _mark_unavailable(upload, f"Could not fetch the URL: unexpected {type(exc).__name__}")
    if response.status != 200:
        if response.status in RETRY_STATUSES and not last_attempt:
            raise FetchRetry(f"HTTP {response.status}")
        return _mark_unavailable(upload, f"Could not fetch the URL: the server answered HTTP {response.status}.")
    content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if content_type and not content_type.startswith(("image/", "video/", "application/octet-stream")):
        return _mark_unavailable(upload, f"The URL is not an image or a video (Content-Type {content_type}).")
    try:
        image = media_inspect(io.BytesIO(response.body))  # the bytes decide, as for an upload
    except UploadRejected as exc:
        return _mark_unavailable(upload, f"The URL's content was refused: {exc}")
    return _store_and_queue(upload, image)


def _store_and_queue(upload: Upload, image) -> str:
    with closing(image):
        stored = image_store(upload_id=upload.pk, image=image)
    try:
        with transaction.atomic():
            changed = Upload.objects.filter(pk=upload.pk, status=Upload.Status.FETCHING).update(
                status=Upload.Status.PENDING, updated_at=timezone.now(), **LEASE_CLEARED, **image_fields(image, stored)
            )
            if changed:
                transaction.on_commit(lambda: scoring_enqueue(upload.pk), robust=True)
    except BaseException:
        files_delete(stored)
        raise
    if not changed:  # another delivery of this task got there first
        files_delete(stored)
        return Upload.objects.values_list("status", flat=True).get(pk=upload.pk)
    return Upload.Status.PENDING


def _mark_unavailable(upload: Upload, reason: str) -> str:
    now = timezone.now()
    with transaction.atomic():
        changed = Upload.objects.filter(pk=upload.pk, status=Upload.Status.FETCHING).update(
            status=Upload.Status.UNAVAILABLE,
            status_reason="".join(c if c.isprintable() else "\ufffd" for c in reason)[:255],
            routed_at=now,
            updated_at=now,
            **LEASE_CLEARED,
        )
        if changed:
            outcome_announce(upload_id=upload.pk, event=UPLOAD_UNAVAILABLE)
    logger.info("upload %s unavailable: %s", upload.pk, reason)
    return Upload.objects.values_list("status", flat=True).get(pk=upload.pk)
