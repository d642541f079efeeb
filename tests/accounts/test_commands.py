import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from accounts.models import ApiClient
from accounts.roles import Role, user_has_role, user_role
from accounts.services import api_client_rotate_token


@pytest.mark.django_db
def test_create_api_client_prints_a_working_token_last():
    out = io.StringIO()
    call_command("create_api_client", "acme", stdout=out)
    token = out.getvalue().strip().splitlines()[-1]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/v1/uploads/").status_code == 200
    assert user_role(ApiClient.objects.get(name="acme").user) is Role.UPLOADER


@pytest.mark.django_db
def test_create_api_client_twice_is_an_error():
    call_command("create_api_client", "acme", stdout=io.StringIO())
    with pytest.raises(CommandError, match="acme"):
        call_command("create_api_client", "acme", stdout=io.StringIO())
    assert ApiClient.objects.count() == 1


@pytest.mark.django_db
def test_rotated_token_revokes_the_old_one():
    out = io.StringIO()
    call_command("create_api_client", "acme", stdout=out)
    old = out.getvalue().strip().splitlines()[-1]
    new = api_client_rotate_token(client=ApiClient.objects.get())
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {old}")
    assert client.get("/api/v1/uploads/").status_code == 401
    client.credentials(HTTP_AUTHORIZATION=f"Token {new}")
    assert client.get("/api/v1/uploads/").status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("role", list(Role))
def test_create_user_with_role_can_sign_in(client, role):
    call_command("create_user", "sam", "--role", role.value, "--password", "a-long-password-1", stdout=io.StringIO())
    user = get_user_model().objects.get(username="sam")
    assert user_role(user) is role
    assert user.is_staff == (role is Role.ADMIN)
    assert client.post("/login/", {"username": "sam", "password": "a-long-password-1"}).status_code == 302


@pytest.mark.django_db
def test_roles_are_ranked():
    from tests.factories import make_user

    moderator = make_user(Role.MODERATOR)
    assert user_has_role(moderator, Role.UPLOADER) and user_has_role(moderator, Role.MODERATOR)
    assert not user_has_role(moderator, Role.ADMIN)


@pytest.mark.django_db
def test_create_user_rejects_duplicates_and_bad_roles():
    call_command("create_user", "sam", "--role", "moderator", "--password", "pw-123456789", stdout=io.StringIO())
    with pytest.raises(CommandError, match="username"):
        call_command("create_user", "sam", "--role", "moderator", stdout=io.StringIO())
    with pytest.raises(CommandError):
        call_command("create_user", "kim", "--role", "superhero")
