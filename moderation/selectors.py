"""Reads for uploads."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Prefetch, QuerySet
from django.urls import reverse

from accounts.roles import Role, user_has_role
from hashes.models import UploadHash
from moderation.models import Upload


def uploads_visible_to(user: AbstractBaseUser) -> QuerySet[Upload]:
    """Moderators see every upload; anyone else only their own."""
    uploads = Upload.objects.select_related("score__model_version")
    if user_has_role(user, Role.MODERATOR):
        return uploads
    return uploads.filter(submitter=user)


def uploads_with_hashes(uploads: QuerySet[Upload]) -> QuerySet[Upload]:
    """``uploads`` with what :class:`~moderation.serializers.UploadOutput` shows of their hashes
    (the first frame's PDQ hash as ``first_pdq_hashes``, the hash-list matches): two queries for a
    page of them. Only where the upload is shown whole: the image views go without."""
    return uploads.prefetch_related(
        Prefetch("pdq_hashes", queryset=UploadHash.objects.filter(frame=0), to_attr="first_pdq_hashes"),
        "hash_matches",
    )


def scored_frames(upload: Upload) -> list[dict]:
    """The frames the routing score scored, for stepping through an animated upload: index,
    1-based number, image URL, the highest category score, and whether it is the worst frame.
    Empty for a still image or one not scored yet."""
    score = upload.score
    if score is None or not score.frames:
        return []
    return [
        {
            "index": frame["index"],
            "number": frame["index"] + 1,
            "url": reverse("moderation:upload_frame", args=[upload.pk, frame["index"]]),
            "harmful": max(frame["scores"].values()),
            "worst": frame["index"] == score.worst_frame,
            "time": frame.get("time"),  # videos: the sample's time in seconds
        }
        for frame in score.frames
    ]


WORST_SHOWN = 5


def video_timeline(upload: Upload) -> dict | None:
    """For a scored video's review: the player's URL, the worst sampled frames (highest score
    first, at most five) with their times, and a score-over-time line (SVG polyline points in a
    100 × 20 box). None for anything else."""
    if upload.kind != Upload.Kind.VIDEO:
        return None
    sampled = scored_frames(upload)
    if not sampled:
        return None
    duration = max(upload.duration_seconds or 0.0, sampled[-1]["time"], 1e-6)
    points = " ".join(f"{100 * f['time'] / duration:.2f},{20 * (1 - f['harmful']):.2f}" for f in sampled)
    worst = sorted(sampled, key=lambda f: (-f["harmful"], f["time"]))[:WORST_SHOWN]
    return {
        "url": reverse("moderation:upload_video", args=[upload.pk]),
        "worst": worst,
        "points": points,
        "duration": duration,
        "scored": len(sampled),
    }
