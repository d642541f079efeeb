"""What humans said before about the same picture."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Q

from moderation.models import Upload
from moderation.services.known_images import known_image_matches
from reviews.models import Decision, ModeratorPreferences, ReviewRound


@dataclass(frozen=True)
class SimilarDecision:
    decision: Decision
    relation: str  # "this upload", "same file", "same picture" or "near-identical picture"
    distance: int  # pHash bits from this upload's picture (0 for the same file or upload)

    @property
    def standing(self) -> bool:
        return self.decision.round.status == ReviewRound.Status.DECIDED


def similar_decisions(*, upload: Upload, limit: int = 20) -> list[SimilarDecision]:
    """What humans decided about this picture, newest first, undone decisions too: on this upload,
    on uploads of the same bytes (sha256), and on uploads whose picture is within
    ``VIGIL_KNOWN_IMAGE_DISTANCE`` pHash bits, the rule that auto-rejects near copies of harmful
    pictures (``known_image_matches``). Near pictures are found through the labels humans left
    (the known-image table), so an undone decision on a near, not identical, picture is not listed."""
    same = Q(upload=upload)
    if upload.sha256:
        same |= Q(upload__sha256=upload.sha256)
    distances = {}
    if upload.phash:  # empty until the worker decoded it (never, for an undecodable original)
        distances = {m.known.phash: m.distance for m in known_image_matches(phash=upload.phash)}
        distances[upload.phash] = 0
        same |= Q(upload__phash__in=list(distances))
    decisions = Decision.objects.filter(same).select_related("moderator", "round", "upload").order_by("-created_at")
    entries = []
    for decision in decisions[:limit]:
        other = decision.upload
        if other.pk == upload.pk:
            entries.append(SimilarDecision(decision, "this upload", 0))
        elif upload.sha256 and other.sha256 == upload.sha256:
            entries.append(SimilarDecision(decision, "same file", 0))
        else:
            distance = distances.get(other.phash, 0)
            entries.append(
                SimilarDecision(decision, "near-identical picture" if distance else "same picture", distance)
            )
    return entries


def preferences_for(user: AbstractBaseUser) -> ModeratorPreferences:
    """The moderator's saved preferences, or the defaults (unsaved) when they never set any."""
    return ModeratorPreferences.objects.filter(user=user).first() or ModeratorPreferences(user=user)


def rounds_of(*, upload: Upload) -> list[ReviewRound]:
    """Every review round of ``upload``, oldest first, each with its decision (or None) on
    ``round.decision_or_none``: the upload's whole human history, undone rounds included."""
    rounds = list(
        ReviewRound.objects.filter(upload=upload)
        .select_related("claimed_by", "reopened_by", "excluded_moderator")
        .order_by("number")
    )
    decisions = {d.round_id: d for d in Decision.objects.filter(upload=upload).select_related("moderator")}
    for round_ in rounds:
        round_.decision_or_none = decisions.get(round_.pk)
    return rounds
