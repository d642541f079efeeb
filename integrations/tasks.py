"""Webhook tasks (the ``webhooks`` queue): each attempt is one task; the service schedules retries."""

from __future__ import annotations

from celery import shared_task


@shared_task
def deliver_webhook(delivery_id: str) -> str | None:
    from integrations.services.webhooks import delivery_send

    return delivery_send(delivery_id=delivery_id)


@shared_task
def requeue_due_webhooks() -> int:
    from integrations.services.webhooks import deliveries_requeue_due

    return len(deliveries_requeue_due())
