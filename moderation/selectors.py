"""Reads for uploads."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from accounts.roles import Role, user_has_role
from moderation.models import Upload


def uploads_visible_to(user: AbstractBaseUser) -> QuerySet[Upload]:
    """Moderators see every upload; anyone else only their own."""
    uploads = Upload.objects.select_related("score__model_version")
    if user_has_role(user, Role.MODERATOR):
        return uploads
    return uploads.filter(submitter=user)
