"""Human-side records.

A :class:`ReviewRound` is one pass of an upload through the human queue: it carries the queue's
sort keys and the moderator's expiring lease. A :class:`Decision` closes exactly one round (a
unique key) and is append-only labelled feedback; a correction or an undo never edits it.
"""

from __future__ import annotations

import pgtrigger
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from moderation.models import ModelVersion, Upload


class ReviewRound(models.Model):
    class Reason(models.TextChoices):
        MODEL = "model", "Model unsure"
        FAILED = "failed", "Could not be scored"
        AUDIT = "audit", "Audit of an automatic decision"
        SECOND = "second", "Second review of a reject"
        REOPEN = "reopen", "Reopened by a person"

    class Status(models.TextChoices):
        OPEN = "open"
        DECIDED = "decided"
        UNDONE = "undone", "Undone (reopened)"
        CANCELLED = "cancelled"

    upload = models.ForeignKey(Upload, on_delete=models.PROTECT, related_name="review_rounds")
    number = models.PositiveSmallIntegerField()
    reason = models.CharField(max_length=6, choices=Reason.choices)
    status = models.CharField(max_length=9, choices=Status.choices, default=Status.OPEN)
    reopened_from = models.OneToOneField(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="reopened_as"
    )
    # Queue keys, copied from the upload when the round opens so the queue is one indexed table.
    harmful_score = models.FloatField(null=True, blank=True)
    uncertainty = models.FloatField(help_text="Distance from the review band's middle; 0 is most uncertain.")
    category = models.CharField(max_length=50, blank=True, default="", help_text="The model's top category.")
    disagreement = models.FloatField(
        default=0.0,
        help_text=(
            "How much a shadow model disagrees with the routing one (route steps + score gap, "
            "reviews/disagreement.py); 0 until a shadow model scored the upload."
        ),
    )
    source = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    uploaded_at = models.DateTimeField()
    # The lease: who holds the round and until when. A second review must go to someone else.
    claimed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    excluded_moderator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # A round a person reopened (reason ``reopen``): who, and why.
    reopened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    reopen_note = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["upload", "number"], name="review_round_number_unique"),
            models.UniqueConstraint(fields=["upload"], condition=Q(status="open"), name="one_open_round_per_upload"),
            models.CheckConstraint(
                condition=Q(status="open", closed_at__isnull=True) | (~Q(status="open") & Q(closed_at__isnull=False)),
                name="review_round_closed_at_when_closed",
            ),
        ]
        indexes = [
            # One partial index per queue ordering: the open rows only, in the order they are served.
            models.Index(
                fields=["uncertainty", "uploaded_at"], condition=Q(status="open"), name="round_open_uncertain"
            ),
            models.Index(
                fields=["-harmful_score", "uploaded_at"], condition=Q(status="open"), name="round_open_score_desc"
            ),
            models.Index(
                fields=["harmful_score", "uploaded_at"], condition=Q(status="open"), name="round_open_score_asc"
            ),
            models.Index(fields=["uploaded_at"], condition=Q(status="open"), name="round_open_oldest"),
            models.Index(
                fields=["-disagreement", "uncertainty", "uploaded_at"],
                condition=Q(status="open"),
                name="round_open_informative",
            ),
            models.Index(
                fields=["claimed_by", "lease_expires_at"], condition=Q(status="open"), name="round_open_claims"
            ),
            models.Index(fields=["created_at"], name="round_created"),
            models.Index(fields=["closed_at"], name="round_closed"),
        ]

    def __str__(self) -> str:
        return f"{self.upload_id} round {self.number} ({self.status})"


class Decision(models.Model):
    class Label(models.TextChoices):
        HARMFUL = "harmful"
        SAFE = "safe"

    upload = models.ForeignKey(Upload, on_delete=models.PROTECT, related_name="decisions")
    # One decision per round, kept by the database.
    round = models.OneToOneField(ReviewRound, on_delete=models.PROTECT, related_name="decision")
    moderator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="decisions")
    label = models.CharField(max_length=7, choices=Label.choices)
    category = models.CharField(max_length=50, blank=True, default="")
    note = models.TextField(blank=True, default="")
    # The model's view at decision time, kept even if the upload is rescored later.
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    model_score = models.FloatField(null=True, blank=True)
    model_category_scores = models.JSONField(null=True, blank=True)
    upload_status_before = models.CharField(max_length=10)
    upload_decided_by_before = models.CharField(max_length=5, blank=True, default="")
    time_spent_ms = models.PositiveIntegerField(null=True, blank=True)
    revealed = models.BooleanField(
        null=True, blank=True, help_text="The moderator unblurred the image before deciding (null: not recorded)."
    )
    # Decide once (services/group_decisions.py): the decisions one keystroke made on a picture and
    # its near copies waiting in the queue share this id; each is still its own decision. Null: alone.
    group = models.UUIDField(null=True, blank=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        # Append-only, enforced by PostgreSQL itself: no UPDATE or DELETE reaches a decision.
        triggers = [pgtrigger.Protect(name="decision_append_only", operation=pgtrigger.Update | pgtrigger.Delete)]
        indexes = [
            models.Index(fields=["upload", "-created_at"], name="decision_upload_created"),
            models.Index(fields=["moderator", "-created_at"], name="decision_moderator_created"),
        ]

    def __str__(self) -> str:
        return f"{self.upload_id}: {self.label} by {self.moderator_id}"


# A claim lasts at least this long: the review page renews it every third of the lease (at most
# every HEARTBEAT_MAX_SECONDS), so even the shortest lease survives one lost heartbeat.
MIN_LEASE_SECONDS = 15
HEARTBEAT_MAX_SECONDS = 30


def heartbeat_seconds(lease_seconds: int) -> int:
    """How often an open review page renews a lease of ``lease_seconds``: a third of it, capped."""
    return max(1, min(HEARTBEAT_MAX_SECONDS, lease_seconds // 3))


def default_lease_seconds() -> int:
    return settings.VIGIL_LEASE_SECONDS


def default_audit_approved_rate() -> float:
    return settings.VIGIL_AUDIT_APPROVED_RATE


def default_audit_rejected_rate() -> float:
    return settings.VIGIL_AUDIT_REJECTED_RATE


def default_second_review_rejects() -> bool:
    return settings.VIGIL_SECOND_REVIEW_REJECTS


class QueueSettings(models.Model):
    """The review queue's knobs, one row, edited by admins in Django's admin site. The row starts
    from the ``VIGIL_LEASE_SECONDS``/``VIGIL_AUDIT_*``/``VIGIL_SECOND_REVIEW_REJECTS`` settings."""

    lease_seconds = models.PositiveIntegerField(
        default=default_lease_seconds,
        validators=[MinValueValidator(MIN_LEASE_SECONDS), MaxValueValidator(3600)],
        help_text="How long a claim lasts without renewal. The review page renews it while open.",
    )
    audit_approved_rate = models.FloatField(
        default=default_audit_approved_rate,
        validators=[MinValueValidator(0), MaxValueValidator(1)],
        help_text="Share of auto-approved uploads sent to humans for audit.",
    )
    audit_rejected_rate = models.FloatField(
        default=default_audit_rejected_rate,
        validators=[MinValueValidator(0), MaxValueValidator(1)],
        help_text="Share of auto-rejected uploads sent to humans for audit.",
    )
    second_review_rejects = models.BooleanField(
        default=default_second_review_rejects, help_text="A human reject is reviewed again by a different moderator."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = verbose_name_plural = "queue settings"
        constraints = [models.CheckConstraint(condition=Q(id=1), name="queue_settings_single_row")]

    def __str__(self) -> str:
        return "Queue settings"

    def save(self, *args, **kwargs) -> None:
        self.pk = 1
        # Not only the admin's form: any save of a lease the page could not keep alive is refused.
        if self.lease_seconds < MIN_LEASE_SECONDS:
            raise ValidationError(
                {"lease_seconds": f"A lease must last at least {MIN_LEASE_SECONDS} seconds (got {self.lease_seconds})."}
            )
        super().save(*args, **kwargs)

    @property
    def heartbeat_seconds(self) -> int:
        return heartbeat_seconds(self.lease_seconds)

    @classmethod
    def load(cls) -> QueueSettings:
        return cls.objects.get_or_create(pk=1)[0]


class ModeratorPreferences(models.Model):
    """How a moderator wants images shown. Blur is on by default: reveal is a choice, per image."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="review_preferences")
    blur_px = models.PositiveSmallIntegerField(
        default=24,
        validators=[MinValueValidator(0), MaxValueValidator(60)],
        help_text="Blur strength in pixels (0 = none).",
    )
    grayscale = models.BooleanField(default=False, help_text="Show images in grayscale.")
    grid_size = models.PositiveSmallIntegerField(
        default=16, validators=[MinValueValidator(12), MaxValueValidator(24)], help_text="Thumbnails per grid page."
    )

    class Meta:
        verbose_name_plural = "moderator preferences"

    def __str__(self) -> str:
        return f"preferences of {self.user_id}"
