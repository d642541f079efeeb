"""POST /api/v1/uploads/ with {"url": ...}: recorded at once, fetched from a real loopback server."""

from __future__ import annotations

import hashlib

import pytest

from integrations.models import WebhookDelivery
from moderation.models import Upload
from moderation.services.remote import FetchRetry, upload_fetch
from moderation.services.scoring import upload_score, uploads_requeue_stale
from tests.conftest import stored_files
from tests.http_receiver import Answer
from tests.images import photo_jpeg, solid

pytestmark = pytest.mark.django_db

URL = "/api/v1/uploads/"


def jpeg_answer(data: bytes) -> Answer:
    return Answer(body=data, headers={"Content-Type": "image/jpeg"})


def submit(api, url: str, **extra) -> dict:
    response = api.post(URL, {"url": url, **extra}, format="json")
    assert response.status_code == 202, response.content
    return response.json()


def test_url_upload_is_fetched_stored_and_scored(api, receiver, allow_loopback, media_root):
    photo = photo_jpeg("coffee")
    receiver.answers["/photos/coffee.jpg"] = [jpeg_answer(photo)]
    body = submit(api, receiver.url("/photos/coffee.jpg?size=large"), external_id="c-1", metadata={"post": 7})
    assert (body["status"], body["source_url"]) == ("fetching", receiver.url("/photos/coffee.jpg?size=large"))
    assert body["sha256"] == "" and body["width"] == 0
    assert receiver.requests == []  # the web request never fetches
    upload = Upload.objects.get(pk=body["id"])
    assert upload.original_filename == "coffee.jpg" and upload.metadata == {"post": 7}

    assert upload_fetch(upload_id=upload.pk) == "pending"
    upload.refresh_from_db()
    assert upload.sha256 == hashlib.sha256(photo).hexdigest()
    assert (upload.format, upload.width, upload.height, upload.byte_size) == ("JPEG", 600, 400, len(photo))
    assert stored_files(media_root) == [upload.original.name]
    [request] = receiver.requests
    assert request.method == "GET" and request.headers["Accept"].startswith("image/jpeg")

    # Fetching again (a redelivered task) does nothing; scoring then works as for a file.
    assert upload_fetch(upload_id=upload.pk) == "pending"
    assert len(receiver.requests) == 1
    assert upload_score(upload_id=upload.pk).status == "approved"
    detail = api.get(f"{URL}{upload.pk}/").json()
    assert (detail["status"], detail["decided_by"]) == ("approved", "auto")


def test_a_video_url_is_fetched_under_the_video_limits_and_scored(api, receiver, allow_loopback, settings):
    from tests.videos import clip_with_insert

    clip = clip_with_insert(seconds=4, insert_at=10)
    settings.VIGIL_MAX_UPLOAD_BYTES = 1000  # images only: the video's own limit applies to it
    settings.VIGIL_MAX_VIDEO_BYTES = len(clip)
    receiver.answers["/clips/cat.mp4"] = [Answer(body=clip, headers={"Content-Type": "video/mp4"})]
    body = submit(api, receiver.url("/clips/cat.mp4"))
    upload = Upload.objects.get(pk=body["id"])

    assert upload_fetch(upload_id=upload.pk) == "pending"
    upload.refresh_from_db()
    assert (upload.kind, upload.format, upload.byte_size) == ("video", "MP4", len(clip))
    assert "video/mp4" in receiver.requests[0].headers["Accept"]
    upload_score(upload_id=upload.pk)
    detail = api.get(f"{URL}{upload.pk}/").json()
    assert detail["kind"] == "video" and detail["scored_frames"][0]["time"] == 0.0

    settings.VIGIL_MAX_VIDEO_BYTES = len(clip) - 1
    receiver.answers["/clips/big.mp4"] = [Answer(body=clip, headers={"Content-Type": "video/mp4"})]
    big = Upload.objects.get(pk=submit(api, receiver.url("/clips/big.mp4"))["id"])
    assert upload_fetch(upload_id=big.pk) == "unavailable"
    big.refresh_from_db()
    assert big.status_reason.startswith("Could not fetch the URL: The response is larger than")


def test_form_field_url_and_idempotent_external_id(api, receiver, allow_loopback):
    first = api.post(URL, {"url": receiver.url("/a.jpg"), "external_id": "x"}, format="multipart")
    again = api.post(URL, {"url": receiver.url("/a.jpg"), "external_id": "x"}, format="multipart")
    assert (first.status_code, again.status_code) == (202, 200)
    assert first.json()["id"] == again.json()["id"] and Upload.objects.count() == 1


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"url": "http://127.0.0.1:8000/a.jpg"}, "Refused: 127.0.0.1 is a loopback address. An admin can allow it."),
        ({"url": "http://169.254.169.254/latest/meta-data/"}, "Refused: 169.254.169.254 is a link-local address."),
        ({"url": "http://[::1]/a.jpg"}, "Refused: ::1 is a loopback address."),
        ({"url": "file:///etc/passwd"}, "Only http and https URLs are accepted."),
        ({"url": "https://u:p@example.com/a.jpg"}, "URLs with a user name or password are not accepted."),
        ({"url": ""}, "This field may not be blank."),
        ({"url": "https://example.com/a.jpg", "image": "x"}, "Give either an image file or a url, not both."),
    ],
)
def test_refused_urls_are_400_and_store_nothing(api, payload, message, media_root):
    response = api.post(URL, payload, format="json")
    assert response.status_code == 400
    assert response.json()["url"][0].startswith(message)
    assert not Upload.objects.exists() and stored_files(media_root) == []


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (Answer(status=404), "Could not fetch the URL: the server answered HTTP 404."),
        (
            Answer(body=b"<html>hi</html>", headers={"Content-Type": "text/html"}),
            "The URL is not an image or a video (Content-Type text/html).",
        ),
        (jpeg_answer(b"\xff\xd8\xff\xe0 not really a jpeg"), "The URL's content was refused: "),
        (jpeg_answer(b"x" * 5000), "Could not fetch the URL: The response is larger than 4,000 bytes."),
        (
            Answer(status=302, headers={"Location": "http://10.9.8.7/a.jpg"}),
            "Could not fetch the URL: Refused: 10.9.8.7 is a private address",
        ),
    ],
)
def test_unfetchable_urls_end_unavailable_with_the_reason(
    api, receiver, allow_loopback, settings, media_root, answer, reason
):
    settings.VIGIL_MAX_UPLOAD_BYTES = settings.VIGIL_MAX_VIDEO_BYTES = 4000
    receiver.answers["/img"] = [answer]
    upload_id = submit(api, receiver.url("/img"))["id"]
    assert upload_fetch(upload_id=upload_id) == "unavailable"
    upload = Upload.objects.get(pk=upload_id)
    assert upload.status_reason.startswith(reason)
    assert upload.routed_at is not None and upload.decided_by == ""
    assert stored_files(media_root) == []
    assert api.get(f"{URL}{upload_id}/").json()["status"] == "unavailable"


def test_transient_failures_retry_then_succeed_or_give_up(api, receiver, allow_loopback, settings):
    settings.VIGIL_FETCH_MAX_ATTEMPTS = 2
    receiver.answers["/flaky"] = [Answer(status=503), jpeg_answer(solid())]
    receiver.answers["/down"] = [Answer(status=503)]
    flaky = submit(api, receiver.url("/flaky"))["id"]
    with pytest.raises(FetchRetry, match="HTTP 503"):
        upload_fetch(upload_id=flaky, attempt=1)
    assert upload_fetch(upload_id=flaky, attempt=2) == "pending"

    down = submit(api, receiver.url("/down"))["id"]
    with pytest.raises(FetchRetry):
        upload_fetch(upload_id=down, attempt=1)
    assert upload_fetch(upload_id=down, attempt=2) == "unavailable"
    assert Upload.objects.get(pk=down).status_reason == "Could not fetch the URL: the server answered HTTP 503."


def test_localhost_is_refused_at_submission(api, receiver):
    response = api.post(URL, {"url": f"http://localhost:{receiver.port}/a.jpg"}, format="json")
    assert response.status_code == 400
    assert response.json() == {"url": ["Refused: 127.0.0.1 is a loopback address. An admin can allow it."]}
    assert receiver.requests == []


def test_unavailable_is_announced_by_webhook(receiver, allow_loopback):
    from rest_framework.test import APIClient

    from accounts.services import api_client_create

    _, token = api_client_create(name="hooked")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    api.put("/api/v1/webhook/", {"url": receiver.url("/hook")}, format="json")
    receiver.answers["/gone"] = [Answer(status=410)]
    upload_id = submit(api, receiver.url("/gone"))["id"]
    upload_fetch(upload_id=upload_id)
    delivery = WebhookDelivery.objects.get()
    assert (delivery.event, str(delivery.upload_id)) == ("upload.unavailable", upload_id)


def test_sweeper_resends_stale_fetches(api, receiver, allow_loopback):
    upload_id = submit(api, receiver.url("/a.jpg"))["id"]
    Upload.objects.filter(pk=upload_id).update(
        updated_at=Upload.objects.get(pk=upload_id).created_at.replace(year=2020)
    )
    assert [str(i) for i in uploads_requeue_stale(older_than_seconds=60)] == [upload_id]


def test_pages_of_a_url_upload_before_and_after_a_failed_fetch(receiver, allow_loopback, client, uploader):
    from django.urls import reverse

    from moderation.services.remote import upload_create_from_url

    receiver.answers["/gone.jpg"] = [Answer(status=404)]
    upload, _ = upload_create_from_url(submitter=uploader, url=receiver.url("/gone.jpg"))
    client.force_login(uploader)
    page = client.get(reverse("moderation:upload", args=[upload.pk]))
    assert page.status_code == 200 and b"Being fetched from its URL" in page.content
    assert client.get(reverse("moderation:upload_image", args=[upload.pk])).status_code == 404
    assert client.get(reverse("moderation:upload_original", args=[upload.pk])).status_code == 404
    upload_fetch(upload_id=upload.pk)
    page = client.get(reverse("moderation:upload", args=[upload.pk]))
    assert b"No image: Could not fetch the URL: the server answered HTTP 404." in page.content
    assert b"refresh.js" not in page.content


def test_nul_characters_never_reach_the_database(api):
    body = submit(api, "https://images.example.com/a%00b.jpg")
    assert Upload.objects.get(pk=body["id"]).original_filename == "ab.jpg"
    response = api.post(URL, {"url": "https://images.example.com/c.jpg", "metadata": {"k": "a\x00"}}, format="json")
    assert (response.status_code, response.json()) == (400, {"metadata": ["metadata must not contain NUL characters."]})
