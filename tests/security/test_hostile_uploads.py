"""A hostile corpus, generated here, through the HTTP API and the browser form: every file gets a
400 with a clear message, and nothing is stored: no row, no file. Odd but valid images are
accepted and converted."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from moderation.models import Upload
from tests.conftest import stored_files
from tests.images import encode, solid
from tests.moderation.test_imaging import _gif, _gif_bomb_in_frame_2, _png_header_only

HOSTILE = {
    "zero-byte": (b"", "empty"),
    "truncated-jpeg": (solid((300, 300))[:400], "corrupt or truncated"),
    "text-renamed-jpg": (b"GET / HTTP/1.1\r\nHost: example.org\r\n\r\n", "not a JPEG, PNG, WebP or GIF"),
    "html-after-png-header": (
        solid((64, 64), fmt="PNG")[:60] + b"<html><script>alert(document.cookie)</script></html>",
        "corrupt or truncated",
    ),
    "huge-dimensions-tiny-bytes": (_png_header_only(100_000, 100_000), "pixels"),
    "bomb-in-a-later-frame": (_gif_bomb_in_frame_2(), "pixels"),
    "too-many-frames": (_gif(150), "frames"),
    "bmp": (encode(Image.new("RGB", (8, 8)), "BMP"), "not a JPEG, PNG, WebP or GIF"),
    "svg": (b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "not a JPEG, PNG"),
}


def _odd_exif() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 8  # rotate 90° counter-clockwise on display
    exif[0x010F] = "\x00" * 500  # a long, binary camera make
    return encode(Image.new("RGB", (120, 40), "blue"), "JPEG", exif=exif.tobytes())


VALID = {
    "16-bit-png": (encode(Image.new("I;16", (32, 32), 30000), "PNG"), (32, 32)),
    "cmyk-jpeg": (encode(Image.new("CMYK", (50, 40), (0, 255, 255, 0)), "JPEG"), (50, 40)),
    "odd-exif-rotated": (_odd_exif(), (40, 120)),
    "palette-with-transparency": (encode(Image.new("RGBA", (20, 10), (0, 0, 0, 0)).convert("P"), "PNG"), (20, 10)),
}


@pytest.mark.django_db
@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_files_are_a_400_through_the_api_and_store_nothing(api, media_root, settings, name):
    settings.VIGIL_MAX_IMAGE_PIXELS = 4_000_000
    data, message = HOSTILE[name]
    response = api.post("/api/v1/uploads/", {"image": SimpleUploadedFile(f"{name}.jpg", data)}, format="multipart")
    assert response.status_code == 400, response.content
    assert message in str(response.json()["image"])
    assert not Upload.objects.exists()
    assert stored_files(media_root) == []


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["zero-byte", "html-after-png-header", "bomb-in-a-later-frame"])
def test_hostile_files_are_a_400_through_the_form(client, uploader, media_root, settings, name):
    settings.VIGIL_MAX_IMAGE_PIXELS = 4_000_000
    client.force_login(uploader)
    data, message = HOSTILE[name]
    response = client.post(reverse("moderation:uploads"), {"image": SimpleUploadedFile(f"{name}.jpg", data)})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Upload.objects.exists() and stored_files(media_root) == []


@pytest.mark.django_db
@pytest.mark.parametrize("name", list(VALID))
def test_odd_but_valid_images_are_accepted_upright(api, name):
    data, (width, height) = VALID[name]
    response = api.post("/api/v1/uploads/", {"image": SimpleUploadedFile(f"{name}.img", data)}, format="multipart")
    assert response.status_code == 201, response.content
    upload = Upload.objects.get()
    assert (upload.width, upload.height) == (width, height)
