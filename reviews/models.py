"""Human-side records. Decisions are append-only labelled feedback: a correction is a new row."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from moderation.models import ModelVersion, Upload


class Decision(models.Model):
    class Label(models.TextChoices):
        HARMFUL = "harmful"
        SAFE = "safe"

    upload = models.ForeignKey(Upload, on_delete=models.PROTECT, related_name="decisions")
    moderator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="decisions")
    label = models.CharField(max_length=7, choices=Label.choices)
    category = models.CharField(max_length=50, blank=True, default="")
    note = models.TextField(blank=True, default="")
    # The model's view at decision time, kept even if the upload is rescored later.
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    model_score = models.FloatField(null=True, blank=True)
    model_category_scores = models.JSONField(null=True, blank=True)
    upload_status_before = models.CharField(max_length=10)
    time_spent_ms = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["upload", "-created_at"], name="decision_upload_created")]

    def __str__(self) -> str:
        return f"{self.upload_id}: {self.label} by {self.moderator_id}"
