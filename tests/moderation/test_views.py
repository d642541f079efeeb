import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from moderation.models import Upload
from tests.conftest import stored_files
from tests.factories import make_upload
from tests.images import solid


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
