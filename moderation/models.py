"""Machine-side records: uploads, model versions, scores and threshold policies."""

from __future__ import annotations

import uuid

import pgtrigger
from django.conf import settings
from django.db import models
from django.db.models import Q

from moderation.bins import cell_key


class Upload(models.Model):
    class Status(models.TextChoices):
        FETCHING = "fetching", "Fetching the URL"
        UNAVAILABLE = "unavailable", "URL could not be fetched"
        PENDING = "pending", "Pending score"
        QUEUED = "queued", "Awaiting a human"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        FAILED = "failed", "Could not be scored"

    class DecidedBy(models.TextChoices):
        AUTO = "auto", "Model"
        HUMAN = "human", "Moderator"

    class Kind(models.TextChoices):
        IMAGE = "image"
        VIDEO = "video"

    FINAL = (Status.APPROVED, Status.REJECTED)
    AWAITING_HUMAN = (Status.QUEUED, Status.FAILED)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    submitter = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="uploads")
    external_id = models.CharField(max_length=255, blank=True, default="")
    # Submitted as a URL: empty image fields until a worker has fetched it (status ``fetching``).
    source_url = models.CharField(max_length=2000, blank=True, default="")
    original = models.FileField(max_length=255, blank=True)
    display = models.FileField(max_length=255, blank=True)
    original_filename = models.CharField(max_length=255, blank=True, default="")
    sha256 = models.CharField(max_length=64, db_index=True, blank=True, default="")
    phash = models.CharField(max_length=16, db_index=True, blank=True, default="")
    format = models.CharField(max_length=10, blank=True, default="")
    width = models.PositiveIntegerField(default=0)
    height = models.PositiveIntegerField(default=0)
    frames = models.PositiveIntegerField(default=1)  # a video: the frames the worker samples
    kind = models.CharField(max_length=5, choices=Kind.choices, default=Kind.IMAGE)
    duration_seconds = models.FloatField(null=True, blank=True, help_text="Videos only: the length in seconds.")
    byte_size = models.PositiveBigIntegerField(default=0)
    metadata = models.JSONField(default=dict, blank=True)

    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    decided_by = models.CharField(max_length=5, choices=DecidedBy.choices, blank=True, default="")
    status_reason = models.CharField(max_length=255, blank=True, default="")
    score = models.ForeignKey("Score", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    policy = models.ForeignKey("ThresholdPolicy", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    score_attempts = models.PositiveSmallIntegerField(default=0)
    # The work lease (services/leases.py): the worker that is scoring (or fetching) the upload now,
    # when it started and when it last said it was still at it. An expired lease means the worker
    # died mid-task: the sweeper sends the upload again and counts an interruption; after
    # VIGIL_SCORE_MAX_INTERRUPTIONS of them the upload goes to humans undecoded.
    lease_owner = models.CharField(max_length=200, blank=True, default="")
    lease_started_at = models.DateTimeField(null=True, blank=True)
    lease_heartbeat_at = models.DateTimeField(null=True, blank=True)
    lease_interruptions = models.PositiveSmallIntegerField(default=0)

    created_at = models.DateTimeField(auto_now_add=True)
    routed_at = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["submitter", "external_id"],
                condition=~Q(external_id=""),
                name="upload_external_id_unique_per_submitter",
            ),
            models.CheckConstraint(
                condition=Q(decided_by="") | Q(status__in=["approved", "rejected"]),
                name="upload_decided_only_when_final",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "created_at"], name="upload_status_created"),
            models.Index(fields=["submitter", "-created_at"], name="upload_submitter_created"),
            models.Index(fields=["updated_at"], name="upload_updated"),
            models.Index(fields=["decided_at"], name="upload_decided"),
            models.Index(fields=["status", "lease_heartbeat_at"], name="upload_status_heartbeat"),
            # /metrics sums interruptions at every scrape: only the few interrupted rows are read.
            models.Index(
                fields=["lease_interruptions"], condition=Q(lease_interruptions__gt=0), name="upload_interrupted"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.id} ({self.status})"

    @property
    def is_final(self) -> bool:
        return self.status in self.FINAL


class ModelVersion(models.Model):
    class Status(models.TextChoices):
        CANDIDATE = "candidate"
        SHADOW = "shadow"
        ACTIVE = "active"
        RETIRED = "retired"

    class Tiling(models.TextChoices):  # moderation.ml.tiling.CHOICES
        NONE = "none", "Whole frame only"
        GRID_2X2 = "2x2", "Whole frame + 2x2 tiles"
        GRID_3X3 = "3x3", "Whole frame + 3x3 tiles"

    name = models.CharField(max_length=100, unique=True)
    architecture = models.CharField(max_length=100)
    weights = models.CharField(max_length=500, help_text="Weights file path, or a description of packaged weights.")
    weights_sha256 = models.CharField(max_length=64)
    preprocessing = models.JSONField(default=dict)
    categories = models.JSONField(default=list)
    config = models.JSONField(default=dict, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.CANDIDATE)
    # Tiled scoring (moderation/ml/tiling.py): besides the whole frame, a wide or large frame is
    # scored in a 2x2 or 3x3 grid of overlapping tiles and its score is the maximum. A serving
    # choice, not part of the weights, so an admin can change it after registration
    # (model_version_set_tiling records who did, and why).
    tiling = models.CharField(
        max_length=4,
        choices=Tiling.choices,
        default=Tiling.NONE,
        help_text="Score wide or large frames also in overlapping tiles (max over the tiles).",
    )
    notes = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    activated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["status"], condition=Q(status="active"), name="one_active_model_version"),
        ]

    def __str__(self) -> str:
        return self.name


class Score(models.Model):
    upload = models.ForeignKey(Upload, on_delete=models.CASCADE, related_name="scores")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="scores")
    harmful_score = models.FloatField()
    category_scores = models.JSONField()
    latency_ms = models.FloatField(help_text="Decode, preprocess and inference time for this image.")
    # Animated images: the scores above are the maximum over the scored frames, per category.
    worst_frame = models.PositiveIntegerField(default=0, help_text="Index of the frame with the highest score.")
    frames = models.JSONField(
        default=list, blank=True, help_text='Animated images only: [{"index": i, "scores": {...}}] per scored frame.'
    )
    # Videos: whether the sampler scanned the whole video (every frame decoded, every changed scene
    # scored: media.video.FrameSampler), which lets a long video be auto-approved. None for images.
    covered = models.BooleanField(null=True, blank=True)
    # The per-category score bins (moderation/bins.py), the key metrics roll traffic up by.
    cell = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["created_at"], name="score_created")]
        constraints = [
            models.UniqueConstraint(fields=["upload", "model_version"], name="score_unique_per_upload_model"),
            models.CheckConstraint(
                condition=Q(harmful_score__gte=0) & Q(harmful_score__lte=1), name="score_harmful_in_unit_range"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.upload_id} × {self.model_version_id}: {self.harmful_score:.3f}"

    def save(self, *args, **kwargs) -> None:
        if not self.cell:
            self.cell = cell_key(self.category_scores)
        super().save(*args, **kwargs)


class Category(models.Model):
    """A harmful category the team defines: moderators tag rejects with it (keys 1–9 follow
    ``position``), policies route on it, and retraining learns an output for it once
    ``learn_from_labels`` standing harmful decisions name it. Seeded from
    ``VIGIL_REVIEW_CATEGORIES``; admins add more in the admin. A category is never deleted once
    decisions name it: turn ``active`` off instead (it leaves the review pages and retraining;
    old decisions keep their key)."""

    key = models.SlugField(max_length=50, unique=True, help_text="Stored on decisions and policies; never rename it.")
    name = models.CharField(max_length=100)
    position = models.PositiveSmallIntegerField(default=0, help_text="Order on the review page (keys 1–9).")
    learn_from_labels = models.PositiveIntegerField(
        default=100, help_text="Retraining learns a score for this category once this many harmful labels name it."
    )
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["position", "id"]
        verbose_name_plural = "categories"

    def __str__(self) -> str:
        return self.key


class ThresholdPolicy(models.Model):
    """A version of the routing thresholds. The newest row is in force; rows are never edited.

    ``thresholds`` maps each category to ``{"approve_below": a, "reject_from": r}`` with
    0 <= a <= r <= 1; scores in [a, r) go to humans.
    """

    version = models.PositiveIntegerField(unique=True)
    thresholds = models.JSONField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    reason = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-version"]
        verbose_name_plural = "threshold policies"
        triggers = [pgtrigger.Protect(name="policy_append_only", operation=pgtrigger.Update | pgtrigger.Delete)]

    def __str__(self) -> str:
        return f"policy v{self.version}"

    @property
    def without_human_band(self) -> list[str]:
        """Categories whose approve_below reaches reject_from: no score of theirs goes to a human."""
        return policy_categories_without_human_band(self.thresholds)


def policy_categories_without_human_band(thresholds: dict[str, dict[str, float]]) -> list[str]:
    return sorted(name for name, b in thresholds.items() if float(b["approve_below"]) >= float(b["reject_from"]))


class PolicyDraft(models.Model):
    """Thresholds a model version proposes (its suggestions on validation data) for an admin to
    review on the threshold page. A draft never routes anything: only a saved policy does."""

    class Status(models.TextChoices):
        OPEN = "open", "Waiting for an admin"
        APPLIED = "applied", "Saved as a policy"
        DISMISSED = "dismissed"

    model_version = models.ForeignKey("ModelVersion", on_delete=models.CASCADE, related_name="policy_drafts")
    thresholds = models.JSONField()
    reason = models.TextField()
    status = models.CharField(max_length=9, choices=Status.choices, default=Status.OPEN)
    policy = models.ForeignKey(
        ThresholdPolicy, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", help_text="Saved as."
    )
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"draft {self.pk} from {self.model_version_id} ({self.status})"


class KnownImage(models.Model):
    """A picture humans have labelled, by perceptual hash. A new upload within
    ``VIGIL_KNOWN_IMAGE_DISTANCE`` bits of a harmful one is auto-rejected; a match with a safe one
    is shown to moderators. One row per hash: the latest human label stands.

    ``c0``..``c7`` are the hash's eight bytes, indexed: two hashes within 7 bits of each other
    share at least one byte (pigeonhole), so candidates come from eight index lookups."""

    class Label(models.TextChoices):
        HARMFUL = "harmful"
        SAFE = "safe"

    phash = models.CharField(max_length=16, unique=True)
    label = models.CharField(max_length=7, choices=Label.choices)
    upload = models.ForeignKey(Upload, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    labelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    c0 = models.PositiveSmallIntegerField(db_index=True)
    c1 = models.PositiveSmallIntegerField(db_index=True)
    c2 = models.PositiveSmallIntegerField(db_index=True)
    c3 = models.PositiveSmallIntegerField(db_index=True)
    c4 = models.PositiveSmallIntegerField(db_index=True)
    c5 = models.PositiveSmallIntegerField(db_index=True)
    c6 = models.PositiveSmallIntegerField(db_index=True)
    c7 = models.PositiveSmallIntegerField(db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at"]

    def __str__(self) -> str:
        return f"{self.phash} ({self.label})"


class ModelEvent(models.Model):
    """The audit log of the model registry: what happened to which version, who did it, why.
    Rows are only ever added."""

    class Action(models.TextChoices):
        REGISTERED = "registered"
        SHADOW = "shadow", "Shadow scoring started"
        ACTIVATED = "activated"
        ROLLED_BACK = "rolled_back", "Rolled back to"
        RETIRED = "retired"
        AUTO_PROMOTED = "auto_promoted", "Promoted by the rule"
        HELD = "held", "Held for an admin"
        TILING = "tiling", "Tiling changed"

    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="events")
    action = models.CharField(max_length=14, choices=Action.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    note = models.TextField(blank=True, default="")
    # The policy in force when the event happened; on a ``retired`` event, the policy that routed
    # with this version until then (what a rollback to it restores).
    policy = models.ForeignKey(ThresholdPolicy, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        triggers = [pgtrigger.Protect(name="model_event_append_only", operation=pgtrigger.Update | pgtrigger.Delete)]

    def __str__(self) -> str:
        return f"{self.model_version_id} {self.action} at {self.created_at:%Y-%m-%d %H:%M}"


class Change(models.Model):
    """A change to what routes uploads: the active model, the shadow set, the threshold policy or a
    hash list that acts on uploads (kind ``policy``, action ``hash_list``).
    Admins see each one in a banner until they acknowledge it; platforms hear of it by webhook
    (``model.changed`` / ``policy.changed``). Rows are only ever added."""

    class Kind(models.TextChoices):
        MODEL = "model"
        POLICY = "policy"

    class Action(models.TextChoices):
        PROMOTED = "promoted", "Model promoted by an admin"
        AUTO_PROMOTED = "auto_promoted", "Model promoted by the rule"
        ROLLED_BACK = "rolled_back", "Model rolled back"
        SHADOW = "shadow", "Shadow scoring started"
        SAVED = "saved", "Policy saved"
        RESTORED = "restored", "Policy restored by a rollback"
        REROUTED = "rerouted", "Queue re-routed"
        TILING = "tiling", "Model tiling changed"
        HASH_LIST = "hash_list", "Hash list changed"

    kind = models.CharField(max_length=6, choices=Kind.choices)
    action = models.CharField(max_length=14, choices=Action.choices)
    summary = models.TextField()
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    policy = models.ForeignKey(ThresholdPolicy, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        triggers = [pgtrigger.Protect(name="change_append_only", operation=pgtrigger.Update | pgtrigger.Delete)]

    def __str__(self) -> str:
        return f"{self.kind} {self.action} at {self.created_at:%Y-%m-%d %H:%M}"


class ChangesSeen(models.Model):
    """How far an admin has acknowledged the change log: changes with a larger id are shown."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    last_id = models.PositiveBigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.user_id} saw changes up to {self.last_id}"


class WorkerHeartbeat(models.Model):
    """A Celery worker's sign of life, written every ``VIGIL_WORKER_HEARTBEAT_SECONDS`` by a
    thread in its main process (moderation/heartbeat.py) and removed on a clean stop. Readiness
    and ``/metrics`` count the scoring workers seen recently."""

    hostname = models.CharField(max_length=200, unique=True)
    queues = models.JSONField(default=list)
    pid = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField()
    last_seen_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["hostname"]

    def __str__(self) -> str:
        return f"{self.hostname} (seen {self.last_seen_at:%H:%M:%S})"


class StorageSweep(models.Model):
    """One run of the orphan-file sweep (services/storage_sweep.py): what it looked at and removed.
    ``/metrics`` adds the runs up."""

    dry_run = models.BooleanField(default=False)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    scanned = models.PositiveIntegerField(default=0)
    orphans = models.PositiveIntegerField(default=0, help_text="Unreferenced files older than the grace period.")
    deleted = models.PositiveIntegerField(default=0)
    deleted_bytes = models.PositiveBigIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)
    note = models.CharField(max_length=255, blank=True, default="")

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"sweep {self.pk}: {self.deleted} of {self.scanned} files removed"
