"""Outbound traffic: the admins' allow-list for private addresses, and webhook deliveries."""

from __future__ import annotations

import ipaddress
import uuid

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q


def validate_network(value: str) -> None:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise ValidationError(f"{value!r} is not an IP address or network (e.g. 10.0.0.0/8 or 127.0.0.1).") from None


class AllowedNetwork(models.Model):
    """A private, loopback or link-local range that outbound requests may reach anyway.

    Vigil refuses to fetch URLs or deliver webhooks to any address that is not publicly
    routable (SSRF protection); an admin adds a row here to permit, say, an internal image host."""

    network = models.CharField(max_length=64, unique=True, validators=[validate_network])
    note = models.CharField(max_length=255, blank=True, default="", help_text="Why this range is allowed.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["network"]

    def __str__(self) -> str:
        return self.network

    def save(self, *args, **kwargs) -> None:
        self.network = str(ipaddress.ip_network(self.network, strict=False))
        super().save(*args, **kwargs)


class WebhookDelivery(models.Model):
    """One event for one API client, delivered until its receiver answers 2xx or attempts run out.

    ``body`` is serialized once, so every attempt sends the same bytes (signed afresh with the
    attempt's timestamp). The id goes out as the ``Vigil-Delivery`` header: receivers deduplicate by it.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting to be sent"
        SENDING = "sending", "Being sent"
        SUCCEEDED = "succeeded", "Delivered"
        FAILED = "failed", "Gave up"

    class Event(models.TextChoices):
        DECIDED = "upload.decided", "Approved or rejected"
        REOPENED = "upload.reopened", "Decision undone; back in the review queue"
        UNAVAILABLE = "upload.unavailable", "Remote URL could not be fetched"
        MODEL_CHANGED = "model.changed", "The model that routes uploads changed (or a shadow started)"
        POLICY_CHANGED = "policy.changed", "The threshold policy changed (or the queue was re-routed)"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    client = models.ForeignKey("accounts.ApiClient", on_delete=models.CASCADE, related_name="webhook_deliveries")
    # The upload an ``upload.*`` event is about; empty for ``model.changed`` / ``policy.changed``.
    upload = models.ForeignKey(
        "moderation.Upload", on_delete=models.CASCADE, null=True, blank=True, related_name="webhook_deliveries"
    )
    event = models.CharField(max_length=40, choices=Event.choices)
    body = models.TextField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    max_attempts = models.PositiveSmallIntegerField()
    next_attempt_at = models.DateTimeField()
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "webhook deliveries"
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status__in=["pending", "sending"]),
                name="webhook_delivery_due",
            ),
            models.Index(fields=["client", "-created_at"], name="webhook_delivery_client"),
        ]

    def __str__(self) -> str:
        return f"{self.event} → {self.client} ({self.status})"


class WebhookAttempt(models.Model):
    """One POST of a delivery: what was sent where, and what came back."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveSmallIntegerField()
    url = models.CharField(max_length=2000)
    started_at = models.DateTimeField()
    duration_ms = models.FloatField()
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.TextField(blank=True, default="", help_text="The first 1,000 characters.")
    error = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        ordering = ["delivery", "number"]
        constraints = [models.UniqueConstraint(fields=["delivery", "number"], name="webhook_attempt_number_unique")]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.delivery_id}"
