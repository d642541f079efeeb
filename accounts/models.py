from __future__ import annotations

from django.conf import settings
from django.db import models


class ApiClient(models.Model):
    """A platform integrating through the REST API. Authenticates with its user's DRF token."""

    name = models.CharField(max_length=100, unique=True)
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="api_client")
    webhook_url = models.CharField(
        max_length=2000,
        blank=True,
        default="",
        help_text="Where Vigil POSTs signed outcome events (docs/webhooks.md). Empty: no webhooks.",
    )
    webhook_secret = models.CharField(
        max_length=100, blank=True, default="", help_text="Signs each webhook (HMAC-SHA256); shown to the client."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name
