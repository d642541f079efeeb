"""PDQ hashes: of uploads (every scored frame), of shared hash lists, and the matches between them.

Every hashed row carries its 256-bit PDQ hash as hex and as sixteen 16-bit chunks ``b0``..``b15``,
each indexed: a hash within 31 bits of another differs in at most one bit in some chunk, so
candidates come from sixteen indexed ``IN`` look-ups (:func:`hashes.pdq.chunk_probes`,
:mod:`hashes.selectors`).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from hashes.pdq import chunks
from moderation.models import Upload


def chunk_fields(pdq: str) -> dict[str, int]:
    return {f"b{i}": value for i, value in enumerate(chunks(pdq))}


class PdqIndexed(models.Model):
    pdq = models.CharField(max_length=64)
    b0 = models.PositiveIntegerField(db_index=True, editable=False)
    b1 = models.PositiveIntegerField(db_index=True, editable=False)
    b2 = models.PositiveIntegerField(db_index=True, editable=False)
    b3 = models.PositiveIntegerField(db_index=True, editable=False)
    b4 = models.PositiveIntegerField(db_index=True, editable=False)
    b5 = models.PositiveIntegerField(db_index=True, editable=False)
    b6 = models.PositiveIntegerField(db_index=True, editable=False)
    b7 = models.PositiveIntegerField(db_index=True, editable=False)
    b8 = models.PositiveIntegerField(db_index=True, editable=False)
    b9 = models.PositiveIntegerField(db_index=True, editable=False)
    b10 = models.PositiveIntegerField(db_index=True, editable=False)
    b11 = models.PositiveIntegerField(db_index=True, editable=False)
    b12 = models.PositiveIntegerField(db_index=True, editable=False)
    b13 = models.PositiveIntegerField(db_index=True, editable=False)
    b14 = models.PositiveIntegerField(db_index=True, editable=False)
    b15 = models.PositiveIntegerField(db_index=True, editable=False)

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        for name, value in chunk_fields(self.pdq).items():
            setattr(self, name, value)
        super().save(*args, **kwargs)


class HashList(models.Model):
    """A list of PDQ hashes with what to do with an upload that matches one: an industry list
    imported from a file, or one a team keeps. ``action``: ``reject`` rejects it automatically,
    ``queue`` sends it to moderators (never auto-approved) with the list named on the review page,
    ``tag`` only records the match."""

    class Action(models.TextChoices):
        REJECT = "reject", "Reject automatically"
        QUEUE = "queue", "Queue for a human, with a banner"
        TAG = "tag", "Tag only"

    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True, default="")
    action = models.CharField(max_length=6, choices=Action.choices, default=Action.QUEUE)
    category = models.CharField(
        max_length=50, blank=True, default="", help_text="The harmful category a match stands for (a category key)."
    )
    enabled = models.BooleanField(default=True, help_text="Off: kept, but no upload is matched against it.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class HashEntry(PdqIndexed):
    """One hash of a list, with the labels and the id it came with (an HMA/ThreatExchange indicator
    id, when the file had one)."""

    hash_list = models.ForeignKey(HashList, on_delete=models.CASCADE, related_name="entries")
    labels = models.CharField(max_length=255, blank=True, default="")
    source_id = models.CharField(max_length=64, blank=True, default="")
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["hash_list", "pdq"], name="hash_entry_unique_per_list")]
        verbose_name_plural = "hash entries"

    def __str__(self) -> str:
        return self.pdq


class UploadHash(PdqIndexed):
    """The PDQ hash of one scored frame of an upload (frame 0: a still image, an animation's first
    frame, a video's first sample), computed by the worker from the frames it decoded to score."""

    upload = models.ForeignKey(Upload, on_delete=models.CASCADE, related_name="pdq_hashes")
    frame = models.PositiveIntegerField(default=0)
    quality = models.PositiveSmallIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["upload", "frame"], name="upload_hash_unique_per_frame")]

    def __str__(self) -> str:
        return f"{self.pdq} (frame {self.frame}, quality {self.quality})"


class HashMatch(models.Model):
    """An upload (one of its frames) matched an entry of a hash list when it was routed. The list's
    name and action are kept as they were, so the record stands if the list changes or goes."""

    upload = models.ForeignKey(Upload, on_delete=models.CASCADE, related_name="hash_matches")
    hash_list = models.ForeignKey(HashList, on_delete=models.SET_NULL, null=True, blank=True, related_name="matches")
    entry = models.ForeignKey(HashEntry, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    list_name = models.CharField(max_length=100)
    action = models.CharField(max_length=6, choices=HashList.Action.choices)
    category = models.CharField(max_length=50, blank=True, default="")
    labels = models.CharField(max_length=255, blank=True, default="")
    pdq = models.CharField(max_length=64, help_text="The list's hash that matched.")
    distance = models.PositiveSmallIntegerField()
    frame = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["distance", "id"]
        verbose_name_plural = "hash matches"

    def __str__(self) -> str:
        return f"{self.upload_id} ~ {self.list_name} ({self.distance} bits)"
