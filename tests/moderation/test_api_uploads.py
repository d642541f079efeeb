"""POST/GET /api/v1/uploads/: the contract of DESIGN.md."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from moderation.models import Upload
from tests.conftest import stored_files
from tests.factories import make_upload
from tests.images import solid

URL = "/api/v1/uploads/"


def image_file(data: bytes | None = None, name: str = "photo.jpg") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data if data is not None else solid(), content_type="image/jpeg")


@pytest.mark.django_db
def test_upload_returns_201_with_the_upload(api, api_client_and_token):
    response = api.post(
        URL, {"image": image_file(), "external_id": "p-1", "metadata": json.dumps({"user": 42})}, format="multipart"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    upload = Upload.objects.get()
    assert body["id"] == str(upload.pk)
    assert body["status"] == "pending"
    assert body["decided_by"] is None and body["decision"] is None and body["harmful_score"] is None
    assert body["external_id"] == "p-1" and body["metadata"] == {"user": 42}
    assert upload.submitter == api_client_and_token[0].user


@pytest.mark.django_db
def test_retry_with_same_external_id_returns_200_and_the_same_upload(api):
    first = api.post(URL, {"image": image_file(), "external_id": "p-1"}, format="multipart")
    second = api.post(URL, {"image": image_file(), "external_id": "p-1"}, format="multipart")
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["id"] == second.json()["id"]
    assert Upload.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("payload", "field", "message"),
    [
        ({}, "image", "No file was submitted"),
        ({"image": "not-a-file"}, "image", "multipart form"),
        ({"image": image_file(b"plain text", "a.jpg")}, "image", "not a JPEG, PNG, WebP or GIF"),
        ({"image": image_file(b"", "a.jpg")}, "image", "empty"),
        ({"image": image_file(solid((300, 300))[:200])}, "image", "corrupt or truncated"),
        ({"image": image_file(), "metadata": "{not json"}, "metadata", "JSON object"),
        ({"image": image_file(), "metadata": "[1, 2]"}, "metadata", "JSON object"),
        ({"image": image_file(), "external_id": "x" * 256}, "external_id", "no more than 255"),
    ],
    ids=["missing", "not-a-file", "text", "empty", "truncated", "bad-json", "json-list", "long-external-id"],
)
def test_bad_input_is_a_400_with_a_message_and_nothing_stored(api, media_root, payload, field, message):
    response = api.post(URL, payload, format="multipart")
    assert response.status_code == 400
    assert message in " ".join(response.json()[field])
    assert not Upload.objects.exists()
    assert stored_files(media_root) == []


@pytest.mark.django_db
def test_byte_limit_applies_to_the_api(api, settings, media_root):
    settings.VIGIL_MAX_UPLOAD_BYTES = 2048
    response = api.post(URL, {"image": image_file(solid((500, 500)))}, format="multipart")
    assert response.status_code == 400
    assert "larger than" in response.json()["image"][0]
    assert stored_files(media_root) == []


@pytest.mark.django_db
def test_json_carries_urls_not_images_and_other_bodies_are_415(api):
    response = api.post(URL, {"image": "x"}, format="json")
    assert (response.status_code, response.json()) == (
        400,
        {"image": ["Send the image as a file in a multipart form, or give a url."]},
    )
    for body in ("null", "[1, 2]", '"x"'):
        response = api.post(URL, body, content_type="application/json")
        assert (response.status_code, response.json()) == (
            400,
            {"non_field_errors": ["Send a JSON object or a multipart form."]},
        )
    assert api.post(URL, "<image/>", content_type="application/xml").status_code == 415


@pytest.mark.django_db
def test_anonymous_and_bad_token_are_refused():
    anonymous = APIClient()
    assert anonymous.post(URL, {"image": image_file()}, format="multipart").status_code == 401
    bad = APIClient()
    bad.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    assert bad.post(URL, {"image": image_file()}, format="multipart").status_code == 401
    assert not Upload.objects.exists()


@pytest.mark.django_db
def test_get_shows_own_upload_and_hides_others(api, api_client_and_token, uploader):
    own = make_upload(api_client_and_token[0].user)
    other = make_upload(uploader)
    response = api.get(f"{URL}{own.pk}/")
    assert response.status_code == 200
    assert set(response.json()) >= {
        "id",
        "status",
        "decided_by",
        "harmful_score",
        "category_scores",
        "model_version",
        "decision",
    }
    assert api.get(f"{URL}{other.pk}/").status_code == 404
    listing = api.get(URL).json()
    assert [item["id"] for item in listing["results"]] == [str(own.pk)]


@pytest.mark.django_db
def test_moderator_can_read_any_upload(uploader, moderator):
    upload = make_upload(uploader)
    client = APIClient()
    client.force_authenticate(moderator)
    assert client.get(f"{URL}{upload.pk}/").json()["id"] == str(upload.pk)


@pytest.mark.django_db
def test_openapi_schema_describes_the_upload_endpoints(api):
    response = api.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = json.loads(response.content)
    assert {"/api/v1/uploads/", "/api/v1/uploads/{upload_id}/"} <= set(schema["paths"])
    assert "multipart/form-data" in schema["paths"]["/api/v1/uploads/"]["post"]["requestBody"]["content"]
