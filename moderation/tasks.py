"""Celery tasks: take an id, call a service, retry transient failures with backoff."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings

from moderation.models import Upload

logger = logging.getLogger(__name__)


@shared_task(
    bind=True,
    autoretry_for=(Exception,),
    retry_backoff=2,
    retry_backoff_max=60,
    max_retries=10,
)
def score_upload(self, upload_id: str) -> str:
    from moderation.services.scoring import upload_score

    try:
        result = upload_score(upload_id=upload_id, worker=self.request.hostname)
    except Upload.DoesNotExist:
        logger.warning("upload %s no longer exists; nothing to score", upload_id)
        return "missing"
    return result.status


@shared_task
def requeue_stale_uploads() -> int:
    """Beat, every VIGIL_SWEEP_INTERVAL_SECONDS: re-send interrupted and lost uploads."""
    from moderation.services.health import worker_heartbeats_prune
    from moderation.services.scoring import uploads_requeue_stale

    worker_heartbeats_prune()
    return len(uploads_requeue_stale(older_than_seconds=settings.VIGIL_PENDING_SWEEP_AFTER_SECONDS))


@shared_task
def sweep_storage() -> int:
    """Beat, every VIGIL_STORAGE_SWEEP_INTERVAL_SECONDS: delete orphan files past the grace period."""
    from moderation.services.storage_sweep import storage_sweep

    return storage_sweep().record.deleted


@shared_task(bind=True, max_retries=None)
def fetch_remote_upload(self, upload_id: str) -> str:
    """Fetch a URL submission (the ``scoring`` queue); transient failures retry with backoff."""
    from moderation.services.remote import FetchRetry, upload_fetch

    try:
        return upload_fetch(upload_id=upload_id, attempt=self.request.retries + 1, worker=self.request.hostname)
    except FetchRetry as exc:
        raise self.retry(countdown=min(5 * 2**self.request.retries, 60), exc=exc) from None
    except Upload.DoesNotExist:
        logger.warning("upload %s no longer exists; nothing to fetch", upload_id)
        return "missing"
