"""Factories for records, built through the services so they hold the same invariants."""

from __future__ import annotations

import io
import itertools

from django.contrib.auth.models import AbstractUser

from accounts.roles import Role
from accounts.services import user_create
from moderation.models import Upload
from moderation.services.intake import upload_create
from tests.images import solid

_counter = itertools.count(1)


def make_user(
    role: Role = Role.UPLOADER, username: str | None = None, password: str = "pw-for-tests-1"
) -> AbstractUser:
    return user_create(username=username or f"{role.value}{next(_counter)}", role=role, password=password)


def make_upload(submitter: AbstractUser | None = None, data: bytes | None = None, **kwargs) -> Upload:
    upload, _ = upload_create(
        submitter=submitter or make_user(),
        file=io.BytesIO(data if data is not None else solid(color=(next(_counter) % 255, 80, 160))),
        **kwargs,
    )
    return upload
