"""Turn upload outcomes and routing changes into webhook deliveries (in the transaction that made them)."""

from __future__ import annotations

from django.dispatch import receiver

from integrations.services.webhooks import deliveries_broadcast, delivery_create
from moderation.models import Change, Upload
from moderation.signals import routing_changed, upload_outcome


@receiver(upload_outcome, sender=Upload, dispatch_uid="integrations.webhook_on_outcome")
def queue_webhook(sender, upload: Upload, event: str, **kwargs) -> None:
    delivery_create(upload=upload, event=event)


@receiver(routing_changed, sender=Change, dispatch_uid="integrations.webhook_on_routing_change")
def queue_change_webhooks(sender, change: Change, **kwargs) -> None:
    deliveries_broadcast(change=change)
