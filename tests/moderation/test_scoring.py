"""Scoring on the real baseline model, then routing; in-process (the e2e test runs a worker)."""

import pytest

from moderation.models import Score, Upload
from moderation.services.model_versions import BASELINE_NAME, model_version_ensure_active
from moderation.services.policies import policy_create
from moderation.services.scoring import upload_score, uploads_requeue_stale
from tests.factories import make_upload
from tests.images import photo_jpeg

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


def test_real_photo_is_scored_and_auto_approved(uploader):
    upload = make_upload(uploader, photo_jpeg("chelsea"))
    result = upload_score(upload_id=upload.pk)
    upload.refresh_from_db()
    assert result.routed_now and result.status == "approved"
    assert (upload.status, upload.decided_by) == ("approved", "auto")
    assert upload.decided_at is not None and upload.policy.version == 1
    score = upload.score
    assert score.model_version.name == BASELINE_NAME
    assert set(score.category_scores) == {"weapon", "nudity"}
    assert score.harmful_score == max(score.category_scores.values()) < 0.002
    assert score.latency_ms > 0


def test_scoring_twice_is_harmless(uploader):
    upload = make_upload(uploader, photo_jpeg("coffee"))
    upload_score(upload_id=upload.pk)
    again = upload_score(upload_id=upload.pk)
    assert not again.routed_now
    assert Score.objects.filter(upload=upload).count() == 1


def test_existing_score_is_reused_when_a_redelivered_task_finds_the_upload_pending(uploader):
    upload = make_upload(uploader, photo_jpeg("coffee"))
    upload_score(upload_id=upload.pk)
    first_score = Score.objects.get(upload=upload)
    Upload.objects.filter(pk=upload.pk).update(status="pending", decided_by="", score=None)
    upload_score(upload_id=upload.pk)
    assert Score.objects.filter(upload=upload).count() == 1
    upload.refresh_from_db()
    assert upload.score_id == first_score.pk and upload.status == "approved"


@pytest.mark.parametrize(
    ("thresholds", "status", "decided_by"),
    [
        (
            {
                "weapon": {"approve_below": 0.0, "reject_from": 1.0},
                "nudity": {"approve_below": 0.2, "reject_from": 0.8},
            },
            "queued",
            "",
        ),
        (
            {
                "weapon": {"approve_below": 0.0, "reject_from": 0.0},
                "nudity": {"approve_below": 0.2, "reject_from": 0.8},
            },
            "rejected",
            "auto",
        ),
    ],
)
def test_routing_follows_the_current_policy(uploader, admin_user, thresholds, status, decided_by):
    # A category that rejects everything has no human band: saved only with the confirmation.
    policy = policy_create(thresholds=thresholds, reason="test", created_by=admin_user, confirm_no_human_band=True)
    upload = make_upload(uploader, photo_jpeg("chelsea"))
    upload_score(upload_id=upload.pk)
    upload.refresh_from_db()
    assert (upload.status, upload.decided_by, upload.policy_id) == (status, decided_by, policy.pk)
    assert upload.status_reason


def test_undecodable_stored_image_goes_to_humans_as_failed(uploader, media_root):
    upload = make_upload(uploader, photo_jpeg("chelsea"))
    (media_root / upload.original.name).write_bytes(b"disk corruption")
    result = upload_score(upload_id=upload.pk)
    upload.refresh_from_db()
    assert result.status == upload.status == "failed"
    assert "could not be scored" in upload.status_reason.lower()
    assert not Score.objects.exists()


def test_upload_that_keeps_failing_ends_failed_after_max_attempts(uploader, settings, monkeypatch):
    settings.VIGIL_SCORE_MAX_ATTEMPTS = 2
    upload = make_upload(uploader, photo_jpeg("chelsea"))
    model_version_ensure_active()

    def explode(**kwargs):
        raise RuntimeError("model crashed")

    monkeypatch.setattr("moderation.services.scoring.score_create", explode)
    with pytest.raises(RuntimeError):
        upload_score(upload_id=upload.pk)
    upload.refresh_from_db()
    assert (upload.status, upload.score_attempts) == ("pending", 1)
    result = upload_score(upload_id=upload.pk)
    upload.refresh_from_db()
    assert result.status == upload.status == "failed"
    assert upload.score_attempts == 2
    assert "failed 2 times" in upload.status_reason


def test_stale_pending_uploads_are_requeued(uploader):
    """Publishes to the configured broker for real; the e2e worker fixture purges the queue."""
    from django.utils import timezone

    stale = make_upload(uploader)
    fresh = make_upload(uploader)
    old = timezone.now() - timezone.timedelta(minutes=10)
    Upload.objects.filter(pk=stale.pk).update(updated_at=old)
    fresh_touched_at = Upload.objects.get(pk=fresh.pk).updated_at
    assert uploads_requeue_stale(older_than_seconds=300) == [stale.pk]
    stale.refresh_from_db()
    assert stale.updated_at > old
    assert Upload.objects.get(pk=fresh.pk).updated_at == fresh_touched_at
    assert uploads_requeue_stale(older_than_seconds=300) == []  # the touch holds off the next sweep


def test_missing_original_goes_to_humans_as_failed(uploader, media_root):
    upload = make_upload(uploader, photo_jpeg("coffee"))
    (media_root / upload.original.name).unlink()
    assert upload_score(upload_id=upload.pk).status == "failed"
    upload.refresh_from_db()
    assert "missing" in upload.status_reason
