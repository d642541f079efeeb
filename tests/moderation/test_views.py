import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from moderation.models import Upload
from tests.conftest import stored_files
from tests.factories import make_upload, score_frames
from tests.images import animated, solid


@pytest.mark.django_db
def test_signed_in_user_uploads_through_the_form(client, uploader):
    client.force_login(uploader)
    response = client.post(reverse("moderation:uploads"), {"image": SimpleUploadedFile("a.png", solid(fmt="PNG"))})
    upload = Upload.objects.get()
    assert response.status_code == 302 and response.url == reverse("moderation:upload", args=[upload.pk])
    assert (upload.submitter, upload.format, upload.original_filename) == (uploader, "PNG", "a.png")
    page = client.get(response.url)
    assert page.status_code == 200 and "Pending score" in page.content.decode()


@pytest.mark.django_db
def test_form_shows_the_error_for_a_bad_file_and_stores_nothing(client, uploader, media_root):
    client.force_login(uploader)
    response = client.post(reverse("moderation:uploads"), {"image": SimpleUploadedFile("a.jpg", b"<html>")})
    assert response.status_code == 400
    assert "not a JPEG, PNG, WebP or GIF image" in response.content.decode()
    assert not Upload.objects.exists() and stored_files(media_root) == []


@pytest.mark.django_db
def test_upload_pages_need_sign_in(client, uploader):
    upload = make_upload(uploader)
    assert client.get(reverse("moderation:uploads")).status_code == 302
    for name in ("moderation:upload", "moderation:upload_image", "moderation:upload_original"):
        response = client.get(reverse(name, args=[upload.pk]))
        assert response.status_code == 302 and response.url.startswith(reverse("login"))


@pytest.mark.django_db
def test_display_image_is_served_inert_to_permitted_users_only(client, uploader, moderator):
    upload = make_upload(uploader)
    other = make_upload()
    client.force_login(uploader)
    response = client.get(reverse("moderation:upload_image", args=[upload.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "image/webp"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response["Content-Security-Policy"]
    assert Image.open(io.BytesIO(b"".join(response.streaming_content))).format == "WEBP"
    assert client.get(reverse("moderation:upload_image", args=[other.pk])).status_code == 404
    client.force_login(moderator)
    assert client.get(reverse("moderation:upload_image", args=[other.pk])).status_code == 200


@pytest.mark.django_db
def test_original_is_a_download_only(client, uploader):
    upload = make_upload(uploader)
    client.force_login(uploader)
    response = client.get(reverse("moderation:upload_original", args=[upload.pk]))
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment;")
    assert response["Content-Type"] == "application/octet-stream"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response["Content-Security-Policy"]


@pytest.mark.django_db
def test_home_sends_moderators_to_the_queue_and_others_to_uploads(client, uploader, moderator):
    client.force_login(uploader)
    assert client.get("/").url == reverse("moderation:uploads")
    client.force_login(moderator)
    assert client.get("/").url == reverse("reviews:queue")


COLOURS = [(255, 0, 0), (0, 200, 0), (0, 0, 255), (255, 255, 0)]


def _colour_of(content: bytes) -> tuple[int, int, int]:
    image = Image.open(io.BytesIO(content))
    assert image.format == "WEBP"
    return image.convert("RGB").getpixel((image.width // 2, image.height // 2))


def _near(pixel, colour) -> bool:
    return all(abs(a - b) <= 12 for a, b in zip(pixel, colour, strict=True))


@pytest.mark.django_db
@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "PNG"])
def test_each_frame_is_served_inert_as_a_webp_to_permitted_users_only(client, uploader, moderator, fmt):
    upload = make_upload(uploader, animated([Image.new("RGB", (40, 30), c) for c in COLOURS], fmt))
    client.force_login(uploader)
    for index, colour in enumerate(COLOURS):
        response = client.get(reverse("moderation:upload_frame", args=[upload.pk, index]))
        assert response.status_code == 200 and response["Content-Type"] == "image/webp"
        assert response["X-Content-Type-Options"] == "nosniff"
        assert response["Content-Security-Policy"] == "default-src 'none'; sandbox"
        assert _near(_colour_of(response.content), colour)
    assert client.get(reverse("moderation:upload_frame", args=[upload.pk, 4])).status_code == 404
    client.force_login(make_upload().submitter)
    assert client.get(reverse("moderation:upload_frame", args=[upload.pk, 1])).status_code == 404
    client.force_login(moderator)
    assert client.get(reverse("moderation:upload_frame", args=[upload.pk, 1])).status_code == 200
    client.logout()
    response = client.get(reverse("moderation:upload_frame", args=[upload.pk, 1]))
    assert response.status_code == 302 and response.url.startswith(reverse("login"))


@pytest.mark.django_db
def test_a_still_image_has_frame_0_only(client, uploader):
    upload = make_upload(uploader)
    client.force_login(uploader)
    assert client.get(reverse("moderation:upload_frame", args=[upload.pk, 0])).status_code == 200
    assert client.get(reverse("moderation:upload_frame", args=[upload.pk, 1])).status_code == 404


@pytest.mark.django_db
def test_the_upload_page_steps_through_the_scored_frames_from_the_worst(client, uploader):
    upload = make_upload(uploader, animated([Image.new("RGB", (40, 30), c) for c in COLOURS]))
    score_frames(upload, {i: {"weapon": w, "nudity": 0.01} for i, w in enumerate([0.1, 0.2, 0.9, 0.3])})
    client.force_login(uploader)
    page = client.get(reverse("moderation:upload", args=[upload.pk])).content.decode()
    assert "frame 3 of 4 (worst) · 0.900" in page
    assert reverse("moderation:upload_frame", args=[upload.pk, 3]) in page and "js/frames.js" in page


@pytest.mark.django_db
def test_a_still_upload_page_has_no_frame_controls(client, uploader):
    upload = make_upload(uploader)
    client.force_login(uploader)
    page = client.get(reverse("moderation:upload", args=[upload.pk])).content.decode()
    assert "data-frames" not in page and "js/frames.js" not in page


@pytest.mark.django_db
def test_a_video_is_served_inline_inert_with_byte_ranges_to_permitted_users_only(client, uploader, moderator):
    from tests.videos import clip_with_insert

    data = clip_with_insert(seconds=3, insert_at=1)
    video = make_upload(uploader, data)
    image = make_upload(uploader)
    url = reverse("moderation:upload_video", args=[video.pk])
    client.force_login(uploader)
    response = client.get(url)
    assert response.status_code == 200
    assert (response["Content-Type"], response["Accept-Ranges"]) == ("video/mp4", "bytes")
    assert response["X-Content-Type-Options"] == "nosniff" and "sandbox" in response["Content-Security-Policy"]
    assert "attachment" not in response.get("Content-Disposition", "")
    assert b"".join(response.streaming_content) == data

    part = client.get(url, HTTP_RANGE="bytes=10-99")
    assert part.status_code == 206 and part.content == data[10:100]
    assert part["Content-Range"] == f"bytes 10-99/{len(data)}"
    tail = client.get(url, HTTP_RANGE="bytes=-20")
    assert tail.status_code == 206 and tail.content == data[-20:]
    assert client.get(url, HTTP_RANGE=f"bytes={len(data)}-").status_code == 200  # unsatisfiable: the whole file

    assert client.get(reverse("moderation:upload_video", args=[image.pk])).status_code == 404  # not a video
    client.force_login(make_upload().submitter)
    assert client.get(url).status_code == 404  # someone else's
    client.force_login(moderator)
    assert client.get(url).status_code == 200
