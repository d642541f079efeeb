import pytest
from django.urls import reverse

from accounts.roles import Role
from tests.factories import make_user


def sign_in(client, username: str, password: str):
    return client.post(reverse("login"), {"username": username, "password": password})


@pytest.mark.django_db
def test_repeated_wrong_passwords_lock_the_account_for_that_address(client, settings):
    settings.AXES_FAILURE_LIMIT = 3
    make_user(Role.MODERATOR, username="mo", password="right-password-1")
    make_user(Role.MODERATOR, username="other", password="right-password-2")
    for _ in range(2):
        assert sign_in(client, "mo", "wrong").status_code == 200  # the form again, with an error
    locked = sign_in(client, "mo", "wrong")
    assert locked.status_code == 429 and "Too many sign-in attempts" in locked.content.decode()
    # Even the right password is refused while locked; another account is not affected.
    assert sign_in(client, "mo", "right-password-1").status_code == 429
    assert sign_in(client, "other", "right-password-2").status_code == 302


@pytest.mark.django_db
def test_a_successful_sign_in_resets_the_count(client, settings):
    settings.AXES_FAILURE_LIMIT = 3
    make_user(Role.UPLOADER, username="up", password="right-password-1")
    for _ in range(2):
        sign_in(client, "up", "wrong")
    assert sign_in(client, "up", "right-password-1").status_code == 302
    client.logout()
    for _ in range(2):
        assert sign_in(client, "up", "wrong").status_code == 200
    assert sign_in(client, "up", "right-password-1").status_code == 302
