"""Turn upload outcomes into webhook deliveries (in the transaction that changed the upload)."""

from __future__ import annotations

from django.dispatch import receiver

from integrations.services.webhooks import delivery_create
from moderation.models import Upload
from moderation.signals import upload_outcome


@receiver(upload_outcome, sender=Upload, dispatch_uid="integrations.webhook_on_outcome")
def queue_webhook(sender, upload: Upload, event: str, **kwargs) -> None:
    delivery_create(upload=upload, event=event)
