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


_CACHE_ATTR = "_vigil_role"


def user_role(user: AbstractBaseUser | AnonymousUser) -> Role | None:
    """The user's highest role. Looked up once per user object (one request), then cached on it."""
    if not user.is_authenticated or not user.is_active:
        return None
    if user.is_superuser:
        return Role.ADMIN
    if not hasattr(user, _CACHE_ATTR):
        names = set(user.groups.values_list("name", flat=True))
        role = next((r for r in (Role.ADMIN, Role.MODERATOR, Role.UPLOADER) if r.value in names), None)
        setattr(user, _CACHE_ATTR, role)
    return getattr(user, _CACHE_ATTR)


def forget_role(user: AbstractBaseUser) -> None:
    """Drop the cached role after changing the user's groups."""
    user.__dict__.pop(_CACHE_ATTR, None)


def user_has_role(user: AbstractBaseUser | AnonymousUser, role: Role) -> bool:
    held = user_role(user)
    return held is not None and _RANK[held] >= _RANK[role]
