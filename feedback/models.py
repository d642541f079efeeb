"""Retraining runs: export → fine-tune → evaluate against the active model → register."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from moderation.models import ModelVersion


class TrainingRun(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        SKIPPED = "skipped", "Skipped (too few new labels)"
        FAILED = "failed"

    class Trigger(models.TextChoices):
        SCHEDULE = "schedule"
        ADMIN = "admin"
        COMMAND = "command"

    status = models.CharField(max_length=9, choices=Status.choices, default=Status.QUEUED)
    trigger = models.CharField(max_length=8, choices=Trigger.choices)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    stage = models.CharField(max_length=40, blank=True, default="")
    progress = models.FloatField(default=0.0)
    labels = models.PositiveIntegerField(default=0, help_text="Labelled images in the export.")
    new_labels = models.PositiveIntegerField(default=0, help_text="Human decisions since the last successful run.")
    forced = models.BooleanField(default=False, help_text="Run despite too few new labels: never promoted by itself.")
    log = models.TextField(blank=True, default="")
    metrics = models.JSONField(default=dict, blank=True)
    candidate = models.ForeignKey(ModelVersion, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    promoted = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # One run at a time: a second request while one is queued or running is refused.
            models.UniqueConstraint(
                fields=["status"], condition=models.Q(status__in=["queued", "running"]), name="one_active_training_run"
            )
        ]

    def __str__(self) -> str:
        return f"training run {self.pk} ({self.status})"
