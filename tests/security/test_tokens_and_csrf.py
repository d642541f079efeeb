import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.roles import Role
from accounts.services import api_client_create
from reviews.models import Decision
from tests.factories import make_round, make_user


def api_with(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


@pytest.mark.django_db
def test_a_revoked_token_is_refused_at_once_and_a_rotated_one_replaces_it(capsys):
    _, token = api_client_create(name="platform")
    assert api_with(token).get("/api/v1/uploads/").status_code == 200
    call_command("api_token", "rotate", "platform")
    new = capsys.readouterr().out.strip().splitlines()[-1]
    assert api_with(token).get("/api/v1/uploads/").status_code == 401
    assert api_with(new).get("/api/v1/uploads/").status_code == 200
    call_command("api_token", "revoke", "platform")
    assert api_with(new).get("/api/v1/uploads/").status_code == 401


@pytest.mark.django_db
def test_forms_need_the_csrf_token():
    moderator = make_user(Role.MODERATOR)
    round_ = make_round()
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(moderator)
    browser.get(reverse("reviews:round", args=[round_.pk]))
    response = browser.post(reverse("reviews:decide", args=[round_.pk]), {"label": "harmful"})
    assert response.status_code == 403
    assert not Decision.objects.exists()
    token = browser.cookies["csrftoken"].value
    accepted = browser.post(
        reverse("reviews:decide", args=[round_.pk]), {"label": "harmful", "csrfmiddlewaretoken": token}
    )
    assert accepted.status_code == 302 and Decision.objects.count() == 1


@pytest.mark.django_db
def test_session_requests_to_the_api_need_csrf_too(uploader):
    browser = APIClient(enforce_csrf_checks=True)
    browser.force_login(uploader)
    assert browser.post("/api/v1/uploads/", {}, format="multipart").status_code == 403


@pytest.mark.django_db
def test_uploads_are_throttled_per_client(monkeypatch):
    from django.core.cache import cache
    from django.core.files.uploadedfile import SimpleUploadedFile
    from rest_framework.throttling import ScopedRateThrottle

    from tests.images import solid

    cache.clear()
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"uploads": "2/min"})
    _, token = api_client_create(name="busy")
    _, other = api_client_create(name="quiet")

    def post(t: str, i: int) -> int:
        image = SimpleUploadedFile(f"{i}.jpg", solid(color=(i, 9, 9)))
        return api_with(t).post("/api/v1/uploads/", {"image": image}, format="multipart").status_code

    assert [post(token, i) for i in range(3)] == [201, 201, 429]
    assert post(other, 3) == 201  # the limit is per client
    assert api_with(token).get("/api/v1/uploads/").status_code == 200  # reading is not throttled
