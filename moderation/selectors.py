"""Reads for uploads."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet
from django.urls import reverse

from accounts.roles import Role, user_has_role
from moderation.models import Upload


def uploads_visible_to(user: AbstractBaseUser) -> QuerySet[Upload]:
    """Moderators see every upload; anyone else only their own."""
    uploads = Upload.objects.select_related("score__model_version")
    if user_has_role(user, Role.MODERATOR):
        return uploads
    return uploads.filter(submitter=user)


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
        }
        for frame in score.frames
    ]
