"""Webhooks: API clients register a URL and hear about every outcome of their uploads.

A delivery row is written in the same transaction that changed the upload, so an outcome that
rolls back sends nothing and one that commits is never lost. Sending claims the row first (a
conditional update, like review leases), so a redelivered task message, the sweeper and a retry
can never POST the same attempt twice, and nothing is sent again after a 2xx.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from accounts.models import ApiClient
from integrations.models import WebhookAttempt, WebhookDelivery
from integrations.signing import secret_new, signed_headers
from moderation.models import Change, ModelVersion, Upload
from moderation.serializers import UploadOutput
from net import outbound

logger = logging.getLogger(__name__)

RESPONSE_EXCERPT_CHARS = 1000
MAX_RESPONSE_BYTES = 64 * 1024
MAX_COUNTDOWN_SECONDS = 60


def webhook_set(*, client: ApiClient, url: str) -> ApiClient:
    """Register (or change) the client's callback URL; a secret is created on first registration."""
    try:
        outbound.literal_refusal(url)
        scheme = outbound.parse_url(url).scheme
    except outbound.OutboundRefused as exc:
        raise ValidationError(str(exc)) from None
    url = url.strip()
    if scheme == "http" and not settings.VIGIL_WEBHOOK_ALLOW_HTTP:
        raise ValidationError("Webhook URLs must use https (set VIGIL_WEBHOOK_ALLOW_HTTP to allow http).")
    client.webhook_url = url
    if not client.webhook_secret:
        client.webhook_secret = secret_new()
    client.save(update_fields=["webhook_url", "webhook_secret"])
    return client


def webhook_clear(*, client: ApiClient) -> None:
    """Stop webhooks for the client. Deliveries still pending fail at their next attempt, for good."""
    client.webhook_url = ""
    client.save(update_fields=["webhook_url"])


def webhook_secret_rotate(*, client: ApiClient) -> str:
    """Replace the signing secret; attempts from now on are signed with the new one."""
    client.webhook_secret = secret_new()
    client.save(update_fields=["webhook_secret"])
    return client.webhook_secret


def backoff_seconds(attempt: int) -> float:
    """Wait after failed attempt number ``attempt`` (1-based): base × 2^(attempt-1), capped."""
    return min(settings.VIGIL_WEBHOOK_BACKOFF_SECONDS * 2 ** (attempt - 1), settings.VIGIL_WEBHOOK_BACKOFF_MAX_SECONDS)


def delivery_create(*, upload: Upload, event: str) -> WebhookDelivery | None:
    """Queue ``event`` for the client that submitted ``upload``, if it registered a webhook.

    Call inside the transaction that changed the upload; the send is enqueued on commit."""
    client = ApiClient.objects.filter(user_id=upload.submitter_id).exclude(webhook_url="").first()
    if client is None:
        return None
    return _delivery_new(client=client, event=event, data={"upload": UploadOutput(upload).data}, upload=upload)


def deliveries_broadcast(*, change: Change) -> list[WebhookDelivery]:
    """Queue ``model.changed`` or ``policy.changed`` for every client with a webhook: what
    changed, and the model and policy that route uploads now. Call inside the change's transaction."""
    from moderation.services.policies import policy_current

    event = {
        Change.Kind.MODEL: WebhookDelivery.Event.MODEL_CHANGED,
        Change.Kind.POLICY: WebhookDelivery.Event.POLICY_CHANGED,
    }[change.kind]
    policy = policy_current()
    active = ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).first()
    data = {
        "change": {
            "id": change.pk,
            "action": change.action,
            "summary": change.summary,
            "model_version": change.model_version.name if change.model_version else None,
            "policy_version": change.policy.version if change.policy else None,
        },
        "active_model": {"name": active.name, "categories": active.categories} if active else None,
        "shadow_models": list(
            ModelVersion.objects.filter(status=ModelVersion.Status.SHADOW).order_by("pk").values_list("name", flat=True)
        ),
        "policy": {"version": policy.version, "thresholds": policy.thresholds, "created_at": policy.created_at},
    }
    clients = ApiClient.objects.exclude(webhook_url="").order_by("pk")
    return [_delivery_new(client=client, event=event, data=data) for client in clients]


def _delivery_new(*, client: ApiClient, event: str, data: dict, upload: Upload | None = None) -> WebhookDelivery:
    delivery_id = uuid.uuid4()
    now = timezone.now()
    payload = {"id": str(delivery_id), "event": event, "created_at": now, **data}
    delivery = WebhookDelivery.objects.create(
        id=delivery_id,
        client=client,
        upload=upload,
        event=event,
        body=json.dumps(payload, cls=DjangoJSONEncoder, separators=(",", ":"), sort_keys=True),
        max_attempts=settings.VIGIL_WEBHOOK_MAX_ATTEMPTS,
        next_attempt_at=now,
    )
    transaction.on_commit(lambda: _enqueue(delivery_id), robust=True)
    return delivery


def _enqueue(delivery_id: uuid.UUID, countdown: float = 0) -> None:
    from integrations.tasks import deliver_webhook

    deliver_webhook.apply_async((str(delivery_id),), countdown=countdown or None)


def _claim(delivery_id: uuid.UUID | str, now) -> bool:
    lease = now + timedelta(seconds=settings.VIGIL_WEBHOOK_TIMEOUT_SECONDS + 30)
    due = Q(status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now)
    stalled = Q(status=WebhookDelivery.Status.SENDING, lease_expires_at__lt=now)
    claimed = (
        WebhookDelivery.objects.filter(due | stalled, pk=delivery_id)
        .filter(attempts__lt=F("max_attempts"))
        .update(status=WebhookDelivery.Status.SENDING, lease_expires_at=lease, attempts=F("attempts") + 1)
    )
    return claimed == 1


def delivery_send(*, delivery_id: uuid.UUID | str) -> str | None:
    """Make the next attempt of a due delivery. Returns its new status, or None if it was not due
    (already delivered, given up, being sent elsewhere, or waiting for its retry time)."""
    now = timezone.now()
    if not _claim(delivery_id, now):
        return None
    delivery = WebhookDelivery.objects.select_related("client").get(pk=delivery_id)
    url, secret = delivery.client.webhook_url, delivery.client.webhook_secret
    body = delivery.body.encode()
    status_code, excerpt, error = None, "", ""
    started = time.perf_counter()
    if not url or not secret:
        error = "The client has no webhook URL (or no signing secret); not retried."
    else:
        headers = {
            "Content-Type": "application/json",
            "Vigil-Event": delivery.event,
            "Vigil-Delivery": str(delivery.pk),
            "Vigil-Attempt": str(delivery.attempts),
            **signed_headers(secret, body),
        }
        try:
            response = outbound.request(
                "POST",
                url,
                body=body,
                headers=headers,
                timeout=settings.VIGIL_WEBHOOK_TIMEOUT_SECONDS,
                max_bytes=MAX_RESPONSE_BYTES,
            )
            status_code = response.status
            excerpt = response.body[:RESPONSE_EXCERPT_CHARS].decode("utf-8", "replace")
        except (outbound.OutboundRefused, outbound.OutboundUnavailable) as exc:
            error = str(exc)
        except Exception as exc:  # whatever else goes wrong is recorded as this attempt's failure
            logger.exception("webhook %s: unexpected error", delivery.pk)
            error = f"Unexpected error: {type(exc).__name__}"
    WebhookAttempt.objects.create(
        delivery=delivery,
        number=delivery.attempts,
        url=url[:2000],
        started_at=now,
        duration_ms=(time.perf_counter() - started) * 1000,
        response_status=status_code,
        response_body=printable(excerpt),
        error=printable(error)[:500],
    )
    succeeded = status_code is not None and 200 <= status_code < 300
    return _settle(delivery, succeeded=succeeded, final=not url or not secret)


def printable(text: str) -> str:
    """Text PostgreSQL can store: NUL characters (which a hostile receiver may send) replaced."""
    return text.replace("\x00", "\ufffd")


def _settle(delivery: WebhookDelivery, *, succeeded: bool, final: bool = False) -> str:
    now = timezone.now()
    # Only the attempt that holds the claim settles it: if its lease ran out and another worker
    # claimed the row meanwhile, the attempts count moved on and this update changes nothing.
    sending = WebhookDelivery.objects.filter(
        pk=delivery.pk, status=WebhookDelivery.Status.SENDING, attempts=delivery.attempts
    )
    if succeeded:
        sending.update(status=WebhookDelivery.Status.SUCCEEDED, delivered_at=now, lease_expires_at=None)
        return WebhookDelivery.Status.SUCCEEDED
    if final or delivery.attempts >= delivery.max_attempts:
        sending.update(status=WebhookDelivery.Status.FAILED, lease_expires_at=None)
        logger.warning("webhook %s to %s failed %d times; giving up", delivery.pk, delivery.client, delivery.attempts)
        return WebhookDelivery.Status.FAILED
    wait = backoff_seconds(delivery.attempts)
    sending.update(
        status=WebhookDelivery.Status.PENDING, next_attempt_at=now + timedelta(seconds=wait), lease_expires_at=None
    )
    if wait <= MAX_COUNTDOWN_SECONDS:
        _enqueue(delivery.pk, countdown=wait)
    # Longer waits are left to the per-minute sweeper: a message held for an hour would outlive
    # Redis's visibility timeout and RabbitMQ's consumer timeout.
    return WebhookDelivery.Status.PENDING


def delivery_redeliver(*, delivery_id: uuid.UUID | str, seen_attempts: int | None = None) -> bool:
    """Send a delivery again now, with a fresh budget of attempts (an admin's button). Receivers
    see the same ``Vigil-Delivery`` id again.

    Fenced like the retry path: refused while an attempt is in flight, and, given
    ``seen_attempts`` (the attempts the admin's page showed), refused once another attempt was
    made since. Without that, a click on a delivery waiting to retry, landing after its retry
    succeeded, would send the event a second time. On a delivery waiting to retry it makes that
    retry due now; the retry's own message, arriving later, finds nothing due and sends nothing."""
    rows = WebhookDelivery.objects.filter(pk=delivery_id).exclude(status=WebhookDelivery.Status.SENDING)
    if seen_attempts is not None:
        rows = rows.filter(attempts=seen_attempts)
    with transaction.atomic():
        changed = rows.update(
            status=WebhookDelivery.Status.PENDING,
            next_attempt_at=timezone.now(),
            max_attempts=F("attempts") + settings.VIGIL_WEBHOOK_MAX_ATTEMPTS,
            delivered_at=None,
        )
        if changed:
            transaction.on_commit(lambda: _enqueue(delivery_id), robust=True)
    return changed == 1


def deliveries_requeue_due(*, grace_seconds: float = 30) -> list[uuid.UUID]:
    """Enqueue deliveries whose message went missing: due for a while, or stuck mid-send past the
    lease (a worker died). Claiming keeps a duplicate message harmless."""
    now = timezone.now()
    stalled = WebhookDelivery.objects.filter(status=WebhookDelivery.Status.SENDING, lease_expires_at__lt=now)
    stalled.filter(attempts__gte=F("max_attempts")).update(status=WebhookDelivery.Status.FAILED, lease_expires_at=None)
    ids = list(
        WebhookDelivery.objects.filter(
            Q(status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now - timedelta(seconds=grace_seconds))
            | Q(status=WebhookDelivery.Status.SENDING, lease_expires_at__lt=now)
        ).values_list("pk", flat=True)[:1000]
    )
    for delivery_id in ids:
        _enqueue(delivery_id)
    return ids
