"""What humans said before about the same picture."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Q

from moderation.models import Upload
from moderation.services.known_images import known_image_matches
from reviews.models import Decision, ModeratorPreferences, ReviewRound


def decisions_on_similar(*, upload: Upload, limit: int = 20) -> list[Decision]:
    """Decisions on this upload and on uploads of the same bytes (sha256) or the same perceptual
    hash (a re-encode, resize or small edit of the same picture), newest first, undone ones too."""
    same = Q(upload=upload) | Q(upload__sha256=upload.sha256)
    if upload.phash:  # empty until the worker decoded it (never, for an undecodable original)
        same |= Q(upload__phash=upload.phash)
    return list(
        Decision.objects.filter(same).select_related("moderator", "round", "upload").order_by("-created_at")[:limit]
    )


def known_matches_for(*, upload: Upload) -> list:
    """Human-labelled pictures near this one (same or close perceptual hash), other than itself."""
    return [m for m in known_image_matches(phash=upload.phash) if m.known.upload_id != upload.pk]


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
