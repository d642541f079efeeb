"""Videos through the API and the upload page: accepted within the limits, else a 400 with a
message and nothing stored."""

from __future__ import annotations

import io

import av
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from moderation.models import Upload
from tests.conftest import stored_files
from tests.videos import audio_only, clip_with_insert

URL = "/api/v1/uploads/"


def video_file(data: bytes, name: str = "clip.mp4", content_type: str = "video/mp4") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type=content_type)


def _no_frames() -> bytes:
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as output:
        stream = output.add_stream("libx264", rate=5)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        output.start_encoding()
    return buffer.getvalue()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("container", "codec", "fmt"),
    [("mp4", "libx264", "MP4"), ("webm", "libvpx-vp9", "WEBM"), ("mkv", "libx264", "MKV")],
)
def test_a_video_is_accepted_as_one_upload(api, media_root, container, codec, fmt):
    data = clip_with_insert(seconds=10, insert_at=3, container=container, codec=codec)
    response = api.post(URL, {"image": video_file(data, f"clip.{container}")}, format="multipart")
    assert response.status_code == 201, response.content
    upload = Upload.objects.get()
    assert (upload.kind, upload.format, upload.width, upload.height) == ("video", fmt, 96, 64)
    assert upload.duration_seconds == pytest.approx(10, abs=0.25)
    assert upload.frames == 10  # the frames the worker will sample: one a second
    assert upload.status == Upload.Status.PENDING and upload.byte_size == len(data)
    assert upload.original.name.endswith(f".{container}")
    assert stored_files(media_root) == [upload.original.name]
    body = response.json()
    assert (body["kind"], body["duration_seconds"]) == ("video", upload.duration_seconds)


@pytest.mark.django_db
def test_an_image_is_still_an_image(api):
    from tests.images import solid

    assert api.post(URL, {"image": video_file(solid(), "a.jpg", "image/jpeg")}, format="multipart").status_code == 201
    upload = Upload.objects.get()
    assert (upload.kind, upload.duration_seconds) == ("image", None)


def _half(data: bytes) -> bytes:
    return data[: len(data) // 2]


BAD = {
    "truncated-webm": (
        lambda: _half(clip_with_insert(seconds=20, insert_at=6, container="webm", codec="libvpx-vp9")),
        "The video is truncated",
    ),
    "truncated-mp4": (lambda: _half(clip_with_insert(seconds=20, insert_at=6)), "damaged or truncated"),
    "no-frames": (_no_frames, "no video stream"),
    "audio-only": (audio_only, "The file has no video stream."),
    "text-named-mp4": (lambda: b"plain text, not a video", "nor an MP4, MOV, WebM or MKV video"),
    "mp4-header-then-garbage": (lambda: b"\x00\x00\x00\x18ftypmp42" + b"x" * 500, "damaged or truncated"),
}


@pytest.mark.django_db
@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_video_is_a_400_with_a_message_and_nothing_stored(api, media_root, case):
    make, message = BAD[case]
    response = api.post(URL, {"image": video_file(make())}, format="multipart")
    assert response.status_code == 400
    assert message in response.json()["image"][0]
    assert not Upload.objects.exists()
    assert stored_files(media_root) == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("VIGIL_MAX_VIDEO_SECONDS", 5, "The video lasts 10 seconds; the limit is 5."),
        ("VIGIL_MAX_VIDEO_PIXELS", 1000, "The video is 96x64 pixels (6,144); the limit is 1,000 pixels."),
        ("VIGIL_MAX_VIDEO_FPS", 4, "The video has 5 frames a second; the limit is 4."),
        ("VIGIL_MAX_VIDEO_BYTES", 1000, "The video is larger than the 1000\xa0bytes limit."),
    ],
)
def test_each_video_limit_is_a_400(api, settings, media_root, setting, value, message):
    setattr(settings, setting, value)
    response = api.post(URL, {"image": video_file(clip_with_insert(seconds=10, insert_at=3))}, format="multipart")
    assert (response.status_code, response.json()["image"]) == (400, [message])
    assert not Upload.objects.exists() and stored_files(media_root) == []


@pytest.mark.django_db
def test_the_video_byte_limit_is_separate_from_the_image_one(api, settings):
    settings.VIGIL_MAX_UPLOAD_BYTES = 1000  # images only
    response = api.post(URL, {"image": video_file(clip_with_insert(seconds=10, insert_at=3))}, format="multipart")
    assert response.status_code == 201, response.content


@pytest.mark.django_db
def test_the_upload_page_takes_a_video(client, uploader, media_root):
    client.force_login(uploader)
    page = client.get("/uploads/")
    assert "video/mp4" in page.content.decode()
    data = clip_with_insert(seconds=4, insert_at=1, container="webm", codec="libvpx-vp9")
    response = client.post("/uploads/", {"image": video_file(data, "clip.webm", "video/webm")})
    upload = Upload.objects.get()
    assert response.status_code == 302 and upload.kind == "video"


@pytest.mark.django_db
def test_the_upload_page_shows_why_a_video_is_refused(client, uploader, media_root):
    client.force_login(uploader)
    response = client.post("/uploads/", {"image": video_file(audio_only())})
    assert response.status_code == 400
    assert "The file has no video stream." in response.content.decode()
    assert not Upload.objects.exists() and stored_files(media_root) == []


class CountingReader(io.BytesIO):
    """A stream that counts the bytes handed out."""

    handed = 0

    def read(self, size: int = -1) -> bytes:
        block = super().read(size)
        self.handed += len(block)
        return block


@pytest.mark.django_db
def test_a_video_larger_than_the_memory_spool_is_stored_whole(uploader, media_root, monkeypatch):
    import hashlib

    from django.core.files.storage import default_storage

    from moderation import videos
    from moderation.services.intake import upload_create

    data = clip_with_insert(seconds=10, insert_at=3, size=(320, 224))
    monkeypatch.setattr(videos, "SPOOL_IN_MEMORY", len(data) // 4)  # so it rolls over to a temporary file
    monkeypatch.setattr(videos, "BLOCK", 4096)
    upload, created = upload_create(submitter=uploader, file=CountingReader(data), filename="clip.mp4")
    assert created and (upload.kind, upload.byte_size) == ("video", len(data))
    with default_storage.open(upload.original.name, "rb") as stored:
        assert hashlib.sha256(stored.read()).hexdigest() == upload.sha256 == hashlib.sha256(data).hexdigest()


@pytest.mark.django_db
def test_an_oversized_video_stream_is_refused_once_past_the_limit_not_read_to_the_end(uploader, settings, media_root):
    from moderation import videos
    from moderation.services.intake import UploadRejected, upload_create

    settings.VIGIL_MAX_VIDEO_BYTES = 10_000
    stream = CountingReader(clip_with_insert(seconds=2, insert_at=1) + b"\0" * (20 * videos.BLOCK))
    with pytest.raises(UploadRejected) as refused:
        upload_create(submitter=uploader, file=stream, filename="big.mp4")
    assert str(refused.value) == "The video is larger than the 9.8\xa0KB limit."
    assert stream.handed <= 10_000 + videos.BLOCK + 16
    assert stored_files(media_root) == [] and not Upload.objects.exists()
