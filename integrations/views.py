"""Admin pages for webhooks: every delivery and attempt, and a redelivery button."""

from __future__ import annotations

import uuid

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from accounts.decorators import admin_required
from accounts.models import ApiClient
from integrations.models import WebhookDelivery
from integrations.selectors import deliveries_list
from integrations.services.webhooks import delivery_redeliver


class DeliveryFilter(forms.Form):
    status = forms.ChoiceField(choices=[("", "any status"), *WebhookDelivery.Status.choices], required=False)
    client = forms.ModelChoiceField(ApiClient.objects.order_by("name"), required=False, empty_label="any client")
    upload = forms.UUIDField(required=False)


@admin_required
@require_GET
def deliveries(request: HttpRequest) -> HttpResponse:
    form = DeliveryFilter(request.GET or None)
    filters = {}
    if form.is_bound and form.is_valid():
        client = form.cleaned_data["client"]
        upload = form.cleaned_data["upload"]
        filters = {
            "status": form.cleaned_data["status"],
            "client_id": client.pk if client else None,
            "upload_id": str(upload) if upload else "",
        }
    page = Paginator(deliveries_list(**filters), 50).get_page(request.GET.get("page"))
    status = 400 if form.errors else 200
    return render(request, "integrations/deliveries.html", {"form": form, "page": page}, status=status)


@admin_required
@require_POST
def redeliver(request: HttpRequest, delivery_id: uuid.UUID) -> HttpResponse:
    delivery = get_object_or_404(WebhookDelivery, pk=delivery_id)
    seen = request.POST.get("attempts", "")
    if delivery_redeliver(delivery_id=delivery.pk, seen_attempts=int(seen) if seen.isdigit() else None):
        messages.success(request, f"Delivery {delivery.pk} queued again.")
        return redirect("integrations:deliveries")
    delivery.refresh_from_db()
    if delivery.status == WebhookDelivery.Status.SENDING:
        messages.warning(request, f"Delivery {delivery.pk} is being sent right now; try again in a moment.")
    else:
        messages.warning(
            request,
            f"Delivery {delivery.pk} was attempted again since you loaded the page (now {delivery.status}, "
            f"attempt {delivery.attempts}); nothing was sent. Redeliver from this page if you still want to.",
        )
    return redirect("integrations:deliveries")
