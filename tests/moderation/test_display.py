"""The display derivative: made by the worker for uploads sent to humans, otherwise on first view."""

from __future__ import annotations

import io

import pytest
from django.conf import settings
from django.core.files.storage import default_storage
from django.urls import reverse
from PIL import Image

from moderation.imaging import display_webp
from moderation.models import Upload
from moderation.services.display import DisplayUnavailable, display_ensure, frame_webp
from moderation.services.policies import policy_create
from moderation.services.scoring import upload_score
from tests.conftest import stored_files
from tests.factories import make_upload, score_frames
from tests.images import animated, photo_frames, photo_jpeg

pytestmark = pytest.mark.django_db


@pytest.mark.slow
def test_the_worker_hashes_every_upload_and_prepares_the_display_of_queued_ones(uploader, admin_user, media_root):
    approved = make_upload(uploader, photo_jpeg("coffee"))
    assert upload_score(upload_id=approved.pk).status == "approved"
    approved.refresh_from_db()
    assert len(approved.phash) == 16 and approved.display.name == ""  # nobody needs to see it yet

    policy_create(
        thresholds={c: {"approve_below": 0.0, "reject_from": 1.0} for c in ("weapon", "nudity")},
        reason="queue everything",
        created_by=admin_user,
    )
    queued = make_upload(uploader, photo_jpeg("chelsea"))
    assert upload_score(upload_id=queued.pk).status == "queued"
    queued.refresh_from_db()
    assert len(queued.phash) == 16
    assert stored_files(media_root) == sorted([approved.original.name, queued.original.name, queued.display.name])
    display = Image.open(default_open(queued.display.name))
    assert display.format == "WEBP" and display.size == (451, 300)


def default_open(name: str):
    from django.core.files.storage import default_storage

    with default_storage.open(name, "rb") as handle:
        return io.BytesIO(handle.read())


def test_the_view_makes_the_derivative_on_first_request_once(client, uploader, media_root):
    upload = make_upload(uploader, photo_jpeg("astronaut"))
    client.force_login(uploader)
    first = client.get(reverse("moderation:upload_image", args=[upload.pk]))
    assert first.status_code == 200 and first["Content-Type"] == "image/webp"
    upload.refresh_from_db()
    assert upload.display.name == f"display/{upload.pk.hex[:2]}/{upload.pk.hex}.webp"
    second = client.get(reverse("moderation:upload_image", args=[upload.pk]))
    assert b"".join(second.streaming_content) == b"".join(first.streaming_content)
    assert stored_files(media_root) == sorted([upload.original.name, upload.display.name])


def test_a_lost_race_keeps_one_file(uploader, media_root):
    upload = make_upload(uploader)
    stale = Upload.objects.get(pk=upload.pk)  # another request read the row before the first made it
    name = display_ensure(upload=upload)
    assert display_ensure(upload=stale) == name
    assert stored_files(media_root) == sorted([upload.original.name, name])


def test_an_undecodable_original_has_no_display(client, uploader):
    upload = make_upload(uploader)
    upload.original.open("wb").write(b"damaged on disk")
    with pytest.raises(DisplayUnavailable, match="cannot be decoded"):
        display_ensure(upload=upload)
    client.force_login(uploader)
    assert client.get(reverse("moderation:upload_image", args=[upload.pk])).status_code == 404


@pytest.mark.slow
def test_an_audit_sample_gets_its_display_ready_too(uploader, media_root):
    from reviews.models import QueueSettings

    QueueSettings.objects.update_or_create(pk=1, defaults={"audit_approved_rate": 1.0})
    upload = make_upload(uploader, photo_jpeg("coffee"))
    assert upload_score(upload_id=upload.pk).status == "approved"  # approved by the model, sampled
    upload.refresh_from_db()
    assert upload.review_rounds.get().reason == "audit"
    assert upload.display.name.startswith("display/")


@pytest.mark.slow
def test_a_picture_the_model_fails_on_keeps_its_phash(uploader, settings, monkeypatch):
    from moderation.ml.baseline import BaselineClassifier

    settings.VIGIL_SCORE_MAX_ATTEMPTS = 1
    monkeypatch.setattr(BaselineClassifier, "predict", lambda self, images: 1 / 0)
    upload = make_upload(uploader, photo_jpeg("rocket"))
    assert upload_score(upload_id=upload.pk).status == "failed"
    upload.refresh_from_db()
    assert len(upload.phash) == 16 and upload.display.name.startswith("display/")
    assert upload.status_reason == "Scoring failed 1 times: ZeroDivisionError"


COLOURS = [(255, 0, 0), (0, 200, 0), (0, 0, 255), (255, 255, 0)]


def _centre(name: str) -> tuple[int, int, int]:
    image = Image.open(default_open(name))
    return image.convert("RGB").getpixel((image.width // 2, image.height // 2))


def _near(pixel, colour) -> bool:
    return all(abs(a - b) <= 12 for a, b in zip(pixel, colour, strict=True))


def test_an_animation_is_displayed_at_its_worst_frame(client, uploader, media_root):
    upload = make_upload(uploader, animated([Image.new("RGB", (40, 30), c) for c in COLOURS]))
    score_frames(upload, {i: {"weapon": w} for i, w in enumerate([0.1, 0.2, 0.9, 0.3])})
    client.force_login(uploader)
    response = client.get(reverse("moderation:upload_image", args=[upload.pk]))
    assert response.status_code == 200
    upload.refresh_from_db()
    assert upload.display.name == f"display/{upload.pk.hex[:2]}/{upload.pk.hex}-f2.webp"
    assert _near(_centre(upload.display.name), COLOURS[2])
    assert Image.open(default_open(upload.display.name)).n_frames == 1  # a still picture


def test_a_derivative_made_before_scoring_is_replaced_by_the_worst_frame(uploader, media_root):
    upload = make_upload(uploader, animated([Image.new("RGB", (40, 30), c) for c in COLOURS], "WEBP"))
    before = display_ensure(upload=upload)
    assert _near(_centre(before), COLOURS[0])
    score_frames(upload, {i: {"weapon": w} for i, w in enumerate([0.1, 0.2, 0.3, 0.9])})
    after = display_ensure(upload=upload)
    assert after != before and _near(_centre(after), COLOURS[3])
    assert display_ensure(upload=Upload.objects.get(pk=upload.pk)) == after  # made once
    assert stored_files(media_root) == sorted([upload.original.name, after])  # the old one is gone


def test_a_frame_the_image_lacks_cannot_be_shown(uploader):
    upload = make_upload(uploader, animated([Image.new("RGB", (40, 30), c) for c in COLOURS]))
    with pytest.raises(DisplayUnavailable):
        frame_webp(upload=upload, index=4)
    assert frame_webp(upload=upload, index=3)


@pytest.mark.slow
def test_the_worker_displays_the_frame_the_model_found_worst(uploader, admin_user, media_root):
    policy_create(
        thresholds={c: {"approve_below": 0.002, "reject_from": 0.5} for c in ("weapon", "nudity")},
        reason="queue the astronaut",
        created_by=admin_user,
    )
    data = animated(photo_frames(["chelsea", "coffee", "astronaut", "chelsea"]), "GIF")
    upload = make_upload(uploader, data)
    assert upload_score(upload_id=upload.pk).status == "queued"
    upload.refresh_from_db()
    assert upload.score.worst_frame == 2
    with default_storage.open(upload.display.name, "rb") as handle:
        assert handle.read() == display_webp(data, max_side=settings.VIGIL_DISPLAY_MAX_SIDE, frame=2)
