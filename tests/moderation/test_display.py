"""The display derivative: made by the worker for uploads sent to humans, otherwise on first view."""

from __future__ import annotations

import io

import pytest
from django.urls import reverse
from PIL import Image

from moderation.models import Upload
from moderation.services.display import DisplayUnavailable, display_ensure
from moderation.services.policies import policy_create
from moderation.services.scoring import upload_score
from tests.conftest import stored_files
from tests.factories import make_upload
from tests.images import photo_jpeg

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
