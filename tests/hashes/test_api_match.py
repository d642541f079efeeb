from __future__ import annotations

import io

import pytest
from PIL import Image
from rest_framework.test import APIClient

from accounts.roles import Role
from hashes.models import HashEntry, HashList, HashMatch, UploadHash
from hashes.pdq import pdq_compute
from hashes.services.lists import hash_list_create, hash_list_import
from tests.factories import make_user
from tests.hashes.conftest import hex_hash
from tests.images import encode, photo, photo_jpeg, solid

pytestmark = pytest.mark.django_db
URL = "/api/v1/hashes/match"
A = hex_hash(1)


def flip(pdq: str, bits: int) -> str:
    return f"{int(pdq, 16) ^ ((1 << bits) - 1):064x}"


@pytest.fixture
def industry():
    hash_list = hash_list_create(name="industry", action="reject", category="weapon")
    hash_list_import(hash_list=hash_list, data=f"{A},4169895076385542,1,2020-07-01,csam known\n", fmt="hma")
    return hash_list


def test_a_hash_matches_within_the_distance(api, industry):
    response = api.post(URL, {"pdq": flip(A, 5).upper()}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json() == {
        "pdq": flip(A, 5),
        "quality": None,
        "matches": [
            {
                "list": "industry",
                "list_id": industry.pk,
                "action": "reject",
                "category": "weapon",
                "labels": "csam known",
                "source_id": "4169895076385542",
                "pdq": A,
                "distance": 5,
            }
        ],
    }
    assert not HashMatch.objects.exists() and not UploadHash.objects.exists()  # nothing stored


def test_max_distance_narrows_the_match(api, industry):
    assert api.post(URL, {"pdq": flip(A, 5), "max_distance": 4}, format="json").json()["matches"] == []
    assert len(api.post(URL, {"pdq": flip(A, 5), "max_distance": 5}, format="json").json()["matches"]) == 1
    assert api.post(URL, {"pdq": flip(A, 32)}, format="json").json()["matches"] == []  # beyond 31


def test_a_disabled_list_is_not_matched(api, industry):
    HashList.objects.filter(pk=industry.pk).update(enabled=False)
    assert api.post(URL, {"pdq": A}, format="json").json()["matches"] == []


def test_no_match(api, industry):
    response = api.post(URL, {"pdq": hex_hash(2)}, format="multipart")
    assert response.status_code == 200
    assert response.json() == {"pdq": hex_hash(2), "quality": None, "matches": []}


def test_an_image_matches_a_list_holding_its_hash(api):
    jpeg = photo_jpeg("astronaut", quality=85)
    with Image.open(io.BytesIO(jpeg)) as image:
        own = pdq_compute(image.convert("RGB"))
    hash_list = hash_list_create(name="team", action="queue")
    hash_list_import(hash_list=hash_list, data=f"{own.hex} astronaut\n", fmt="pdq")
    # A re-encoded, smaller copy is still the same picture.
    copy = encode(photo("astronaut").resize((256, 256)), "JPEG", quality=60)
    response = api.post(URL, {"image": io.BytesIO(copy)}, format="multipart")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["quality"] >= 50 and "low_quality" not in body
    [match] = body["matches"]
    assert (match["list"], match["labels"], match["pdq"]) == ("team", "astronaut", own.hex)
    assert match["distance"] <= 31
    assert not HashEntry.objects.exclude(pdq=own.hex).exists()


def test_an_image_not_on_any_list(api, industry):
    response = api.post(URL, {"image": io.BytesIO(photo_jpeg("coffee"))}, format="multipart")
    assert response.status_code == 200
    body = response.json()
    assert len(body["pdq"]) == 64 and body["matches"] == []


def test_a_flat_image_is_low_quality_and_not_matched(api, settings):
    flat = solid((200, 200), (120, 120, 120))
    with Image.open(io.BytesIO(flat)) as image:
        own = pdq_compute(image.convert("RGB"))
    assert own.quality < settings.VIGIL_PDQ_MIN_QUALITY
    hash_list_import(hash_list=hash_list_create(name="grey"), data=own.hex, fmt="pdq")
    body = api.post(URL, {"image": io.BytesIO(flat)}, format="multipart").json()
    assert body == {"pdq": own.hex, "quality": own.quality, "low_quality": True, "matches": []}


@pytest.mark.parametrize(
    ("data", "fmt", "field", "message"),
    [
        ({}, "json", "non_field_errors", "Give an image (a multipart file) or a pdq hash."),
        ({"pdq": A, "image": "x"}, "json", "non_field_errors", "Give either an image or a pdq hash, not both."),
        ({"image": "x"}, "json", "image", "Send the image as a file in a multipart form."),
        ({"pdq": "abc"}, "json", "pdq", "Not a PDQ hash: a PDQ hash is 64 hex digits; got 3 characters."),
        ({"pdq": "g" * 64}, "json", "pdq", "Not a PDQ hash: a PDQ hash is hex digits (0-9, a-f) only."),
        ({"pdq": A, "max_distance": 32}, "json", "max_distance", "less than or equal to 31"),
        ({"pdq": A, "max_distance": -1}, "json", "max_distance", "greater than or equal to 0"),
        ({"pdq": A, "max_distance": "far"}, "multipart", "max_distance", "A valid integer is required."),
        ({"pdq": ""}, "multipart", "pdq", "This field may not be blank."),  # found by schemathesis: was a 500
        ({"pdq": "\n"}, "multipart", "pdq", "This field may not be blank."),
    ],
)
def test_bad_input_is_a_400_with_a_message(api, data, fmt, field, message):
    response = api.post(URL, data, format=fmt)
    assert response.status_code == 400
    assert message in " ".join(response.json()[field])


def test_an_image_and_a_hash_together_in_a_form(api):
    response = api.post(URL, {"pdq": A, "image": io.BytesIO(photo_jpeg("coffee"))}, format="multipart")
    assert response.status_code == 400
    assert response.json() == {"non_field_errors": ["Give either an image or a pdq hash, not both."]}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "The file is empty."),
        (b"not an image at all", "The file is not a JPEG, PNG, WebP or GIF image."),
        (photo_jpeg("coffee")[:2000], "The image data is corrupt or truncated"),
    ],
)
def test_a_corrupt_image_is_a_400(api, data, message):
    response = api.post(URL, {"image": io.BytesIO(data)}, format="multipart")
    assert response.status_code == 400
    assert message in response.json()["image"][0]


def test_an_image_over_the_pixel_limit_is_a_400(api, settings):
    settings.VIGIL_MAX_IMAGE_PIXELS = 100 * 100
    response = api.post(URL, {"image": io.BytesIO(solid((200, 200)))}, format="multipart")
    assert response.status_code == 400
    assert "the limit is 10,000 pixels" in response.json()["image"][0]


def test_an_image_over_the_byte_limit_is_a_400(api, settings):
    settings.VIGIL_MAX_UPLOAD_BYTES = 1000
    response = api.post(URL, {"image": io.BytesIO(photo_jpeg("coffee"))}, format="multipart")
    assert response.status_code == 400
    assert "larger than the" in response.json()["image"][0]


def test_unauthenticated_is_a_401():
    response = APIClient().post(URL, {"pdq": A}, format="json")
    assert response.status_code == 401


def test_moderators_may_match_and_plain_uploaders_may_not():
    client = APIClient()
    client.force_authenticate(make_user(Role.UPLOADER))
    response = client.post(URL, {"pdq": A}, format="json")
    assert response.status_code == 403
    assert response.json() == {"detail": "Only API clients, moderators and admins may match hashes."}
    client.force_authenticate(make_user(Role.MODERATOR))
    assert client.post(URL, {"pdq": A}, format="json").status_code == 200


def test_the_schema_describes_the_endpoint(api):
    import json

    response = api.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    operation = json.loads(response.content)["paths"]["/api/v1/hashes/match"]["post"]
    assert operation["operationId"] == "hashes_match"
    assert {"multipart/form-data", "application/json"} <= set(operation["requestBody"]["content"])
