"""Writes for users, roles and API clients."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser, Group
from django.db import transaction
from rest_framework.authtoken.models import Token

from accounts.models import ApiClient
from accounts.roles import Role, forget_role


def user_create(*, username: str, role: Role, password: str | None, email: str = "") -> AbstractUser:
    """Create a user holding exactly ``role``. Admins also get Django's admin site."""
    User = get_user_model()
    with transaction.atomic():
        user = User(username=username, email=email, is_staff=role is Role.ADMIN, is_superuser=role is Role.ADMIN)
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()
        user.full_clean(exclude=["password"])
        user.save()
        user_set_role(user=user, role=role)
    return user


def user_set_role(*, user: AbstractUser, role: Role) -> None:
    groups = [Group.objects.get_or_create(name=r.value)[0] for r in Role]
    user.groups.remove(*groups)
    user.groups.add(Group.objects.get(name=role.value))
    forget_role(user)


def api_client_create(*, name: str) -> tuple[ApiClient, str]:
    """Create an API client (an uploader with no password) and return it with its token."""
    with transaction.atomic():
        user = user_create(username=f"api-{name}", role=Role.UPLOADER, password=None)
        client = ApiClient.objects.create(name=name, user=user)
        token = Token.objects.create(user=user)
    return client, token.key


def api_client_revoke(*, client: ApiClient) -> int:
    """Revoke the client's token: requests with it get 401 at once. Returns how many were revoked."""
    return Token.objects.filter(user=client.user).delete()[0]


def api_client_rotate_token(*, client: ApiClient) -> str:
    """Revoke the client's current token and issue a new one."""
    with transaction.atomic():
        Token.objects.filter(user=client.user).delete()
        return Token.objects.create(user=client.user).key
