"""Hourly roll-ups of traffic, human labels, latencies and the queue.

Pages that summarise weeks of traffic read these small tables instead of scanning millions of
uploads. Each hour's rows are recomputed from the raw records whenever something in that hour
changes (``services/rollups.py``), so they are derived data: deleting them all and refreshing
rebuilds them exactly.
"""

from __future__ import annotations

from django.db import models

from moderation.models import ModelVersion


class ScoreCell(models.Model):
    """Scores of one model version created in one hour, counted per cell of per-category score
    bins and per category of the standing human label, with what happened to those uploads.

    ``label_category`` is the category the moderator gave with the standing label (harmful
    labels carry one; safe labels and unlabelled uploads have ""). It splits a cell's row only
    where labels name different categories, so the per-category harmful counts exist while sums
    over it give the cell's totals."""

    hour = models.DateTimeField()
    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="+")
    cell = models.CharField(max_length=200)
    label_category = models.CharField(max_length=50, blank=True, default="")
    scored = models.PositiveIntegerField()
    # Routed by this score (the model's own decision).
    auto_approved = models.PositiveIntegerField(default=0)
    auto_rejected = models.PositiveIntegerField(default=0)
    queued = models.PositiveIntegerField(default=0)
    # The standing human label of the upload (latest decision of a decided round).
    labelled_harmful = models.PositiveIntegerField(default=0)
    labelled_safe = models.PositiveIntegerField(default=0)
    # Automatic decisions a human audited, and those the human overturned.
    audited = models.PositiveIntegerField(default=0)
    overturned = models.PositiveIntegerField(default=0)
    # Uploads two or more moderators decided, and those where they all agreed.
    peer_compared = models.PositiveIntegerField(default=0)
    peer_agreed = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["model_version", "hour", "cell", "label_category"], name="score_cell_label_unique"
            )
        ]
        indexes = [models.Index(fields=["hour"], name="score_cell_hour")]

    def __str__(self) -> str:
        labelled = f" ({self.label_category})" if self.label_category else ""
        return f"{self.hour:%Y-%m-%d %H}h {self.model_version_id} {self.cell}{labelled}: {self.scored}"


class LatencyBin(models.Model):
    """A histogram of durations per hour (log-spaced bins, ``services/rollups.py``)."""

    class Metric(models.TextChoices):
        SCORING = "scoring", "Scoring latency (ms)"
        TO_DECISION = "to_decision", "Upload to final decision (s)"
        TO_HUMAN_DECISION = "to_human", "Upload to human decision (s)"

    hour = models.DateTimeField()
    metric = models.CharField(max_length=12, choices=Metric.choices)
    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, null=True, related_name="+")
    bin = models.SmallIntegerField()
    count = models.PositiveIntegerField()

    class Meta:
        indexes = [models.Index(fields=["metric", "hour"], name="latency_bin_metric_hour")]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H}h {self.metric} bin {self.bin}: {self.count}"


class WindowSummary(models.Model):
    """One model version's cells summed over one standard window, kept by the beat task so the
    admin pages read one row instead of summing an hourly row per cell (a cell-hour table holds
    about one row per score at fine bins; a window holds at most one per cell)."""

    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="+")
    window = models.CharField(max_length=8)
    since = models.DateTimeField()
    until = models.DateTimeField()
    computed_at = models.DateTimeField()
    # [[cell key, scored, auto_approved, …], …] in traffic.COUNTS order, then {label category:
    # labelled harmful} where harmful labels in the cell name categories
    cells = models.JSONField()
    hourly = models.JSONField()  # [[ISO hour, scored], …]

    class Meta:
        constraints = [models.UniqueConstraint(fields=["model_version", "window"], name="window_summary_unique")]

    def __str__(self) -> str:
        return f"{self.model_version_id} {self.window} as of {self.computed_at:%Y-%m-%d %H:%M:%S}"


class QueueHour(models.Model):
    """Review rounds opened and closed in an hour; the queue depth is their running difference."""

    hour = models.DateTimeField(unique=True)
    opened = models.PositiveIntegerField()
    closed = models.PositiveIntegerField()

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H}h +{self.opened} -{self.closed}"


class RollupState(models.Model):
    """How far the roll-ups are up to date (one row)."""

    refreshed_until = models.DateTimeField(null=True)
    # When a refresh last recomputed any hour: summaries computed before it may be stale.
    changed_at = models.DateTimeField(null=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=models.Q(id=1), name="rollup_state_single_row")]

    def __str__(self) -> str:
        return f"roll-ups refreshed until {self.refreshed_until}"
