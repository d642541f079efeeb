"""The three roles of Vigil, held as Django groups.

- uploader: submits images and sees their own uploads (API clients are uploaders);
- moderator: also works the review queue and records decisions;
- admin: everything, including thresholds, models and exports (and Django's admin site).
"""

from __future__ import annotations

from enum import StrEnum

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser


class Role(StrEnum):
    UPLOADER = "uploader"
    MODERATOR = "moderator"
    ADMIN = "admin"


# Each role includes the ones to its left.
_RANK = {Role.UPLOADER: 0, Role.MODERATOR: 1, Role.ADMIN: 2}


def user_role(user: AbstractBaseUser | AnonymousUser) -> Role | None:
    if not user.is_authenticated or not user.is_active:
        return None
    if user.is_superuser:
        return Role.ADMIN
    names = {group.name for group in user.groups.all()}
    for role in (Role.ADMIN, Role.MODERATOR, Role.UPLOADER):
        if role.value in names:
            return role
    return None


def user_has_role(user: AbstractBaseUser | AnonymousUser, role: Role) -> bool:
    held = user_role(user)
    return held is not None and _RANK[held] >= _RANK[role]
