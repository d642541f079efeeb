"""GET /api/v1/uploads/ honours ?page_size= up to the documented maximum."""

from __future__ import annotations

import pytest

from moderation.apis import UploadPagination
from tests.factories import make_upload
from tests.images import solid

pytestmark = pytest.mark.django_db


@pytest.fixture
def five(api_client_and_token):
    client, _ = api_client_and_token
    return [make_upload(client.user, solid(color=(i * 40, 10, 10))) for i in range(5)]


def test_page_size_is_honoured_and_the_cursor_keeps_it(api, five):
    first = api.get("/api/v1/uploads/?page_size=2").json()
    assert len(first["results"]) == 2 and "page_size=2" in first["next"]
    second = api.get(first["next"]).json()
    third = api.get(second["next"]).json()
    ids = [u["id"] for page in (first, second, third) for u in page["results"]]
    assert len(second["results"]) == 2 and len(third["results"]) == 1 and third["next"] is None
    assert ids == [str(u.pk) for u in reversed(five)]  # newest first, each once


def test_page_size_is_capped_and_bad_values_are_a_400(api, five, monkeypatch):
    assert UploadPagination.max_page_size == 200 and UploadPagination.page_size == 50
    monkeypatch.setattr(UploadPagination, "max_page_size", 3)
    assert len(api.get("/api/v1/uploads/?page_size=1000").json()["results"]) == 3
    for bad in ("lots", "0", "-2", "null"):
        response = api.get(f"/api/v1/uploads/?page_size={bad}")
        assert (response.status_code, response.json()) == (400, {"page_size": ["A whole number from 1 to 3."]})


def test_a_cursor_that_does_not_decode_is_a_400(api, five):
    response = api.get("/api/v1/uploads/?cursor=garbage")
    assert response.status_code == 400 and "cursor" in response.json()


def test_the_schema_documents_page_size(api):
    schema = api.get("/api/v1/schema/?format=json").json()
    parameters = {p["name"]: p for p in schema["paths"]["/api/v1/uploads/"]["get"]["parameters"]}
    assert "200" in parameters["page_size"]["description"] and "cursor" in parameters
