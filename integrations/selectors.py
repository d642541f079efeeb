"""Reads for the integrations pages."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from integrations.models import WebhookAttempt, WebhookDelivery


def deliveries_list(
    *, status: str = "", client_id: int | None = None, upload_id: str = ""
) -> QuerySet[WebhookDelivery]:
    deliveries = WebhookDelivery.objects.select_related("client").prefetch_related(
        Prefetch("attempt_log", queryset=WebhookAttempt.objects.order_by("number"))
    )
    if status:
        deliveries = deliveries.filter(status=status)
    if client_id:
        deliveries = deliveries.filter(client_id=client_id)
    if upload_id:
        deliveries = deliveries.filter(upload_id=upload_id)
    return deliveries.order_by("-created_at")
