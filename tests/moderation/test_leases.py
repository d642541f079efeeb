"""Work leases on uploads: claim, renewal, expiry, re-sending, and the bound on uploads that keep
killing their worker. The real worker kill is in tests/e2e/test_lease_recovery.py."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from moderation.models import Score, Upload
from moderation.services.display import DisplayUnavailable, display_ensure
from moderation.services.leases import (
    lease_kept_alive,
    upload_lease_claim,
    upload_lease_release,
    upload_lease_renew,
)
from moderation.services.remote import upload_create_from_url, upload_fetch
from moderation.services.scoring import upload_score, uploads_requeue_stale
from reviews.models import ReviewRound
from tests.factories import make_upload

pytestmark = pytest.mark.django_db

PENDING = Upload.Status.PENDING


def _silence(upload: Upload, seconds: float) -> None:
    """Make the lease's last heartbeat ``seconds`` old, as if its worker had died then."""
    Upload.objects.filter(pk=upload.pk).update(lease_heartbeat_at=timezone.now() - timedelta(seconds=seconds))


def test_a_live_lease_cannot_be_claimed_and_an_expired_one_is_taken_over_and_counted(uploader, settings):
    settings.VIGIL_SCORING_LEASE_SECONDS = 15
    upload = make_upload(uploader)
    assert upload_lease_claim(upload_id=upload.pk, status=PENDING, owner="w1", count_attempt=True)
    assert not upload_lease_claim(upload_id=upload.pk, status=PENDING, owner="w2", count_attempt=True)
    assert not upload_lease_claim(upload_id=upload.pk, status=Upload.Status.FETCHING, owner="w2")
    _silence(upload, 10)
    assert not upload_lease_claim(upload_id=upload.pk, status=PENDING, owner="w2")  # 10 s: still alive
    assert upload_lease_renew(upload_id=upload.pk, owner="w1")
    assert not upload_lease_renew(upload_id=upload.pk, owner="w2")
    _silence(upload, 16)
    assert upload_lease_claim(upload_id=upload.pk, status=PENDING, owner="w2", count_attempt=True)
    upload.refresh_from_db()
    assert (upload.lease_owner, upload.score_attempts, upload.lease_interruptions) == ("w2", 2, 1)
    assert not upload_lease_renew(upload_id=upload.pk, owner="w1")  # w1 lost it
    assert not upload_lease_release(upload_id=upload.pk, owner="w1")
    assert upload_lease_release(upload_id=upload.pk, owner="w2")
    upload.refresh_from_db()
    assert (upload.lease_owner, upload.lease_heartbeat_at) == ("", None)
    # A released lease is claimed without counting an interruption: the attempt ended cleanly.
    assert upload_lease_claim(upload_id=upload.pk, status=PENDING, owner="w3")
    upload.refresh_from_db()
    assert upload.lease_interruptions == 1


def test_a_duplicate_message_leaves_an_upload_in_hand_to_its_worker(uploader):
    upload = make_upload(uploader)
    assert upload_lease_claim(upload_id=upload.pk, status=PENDING, owner="busy-worker", count_attempt=True)
    result = upload_score(upload_id=upload.pk)  # a second delivery of the same message
    upload.refresh_from_db()
    assert (result.status, result.routed_now) == ("pending", False)
    assert (upload.lease_owner, upload.score_attempts) == ("busy-worker", 1)
    assert not Score.objects.filter(upload=upload).exists()


def test_the_sweeper_resends_an_interrupted_upload_at_once_and_a_never_started_one_only_when_idle(uploader, settings):
    """Publishes to the configured broker for real (the e2e fixtures purge it)."""
    settings.VIGIL_SCORING_LEASE_SECONDS = 15
    interrupted, working, waiting, idle = (make_upload(uploader) for _ in range(4))
    for upload, owner in ((interrupted, "dead"), (working, "alive")):
        upload_lease_claim(upload_id=upload.pk, status=PENDING, owner=owner, count_attempt=True)
    _silence(interrupted, 20)
    _silence(working, 5)
    long_ago = timezone.now() - timedelta(minutes=10)
    Upload.objects.filter(pk__in=[working.pk, idle.pk]).update(updated_at=long_ago)  # a long video, a lost message

    assert sorted(uploads_requeue_stale(older_than_seconds=300)) == sorted([interrupted.pk, idle.pk])
    interrupted.refresh_from_db()
    assert (interrupted.status, interrupted.lease_owner, interrupted.lease_interruptions) == (PENDING, "", 1)
    working.refresh_from_db()
    assert working.lease_owner == "alive"  # alive however old: never sent twice
    waiting.refresh_from_db()
    assert waiting.lease_interruptions == 0
    # Sent once: the next sweeps leave them alone while the messages are on their way.
    assert uploads_requeue_stale(older_than_seconds=300) == []


def test_an_upload_that_keeps_killing_its_worker_goes_to_humans_undecoded(uploader, settings, media_root):
    settings.VIGIL_SCORING_LEASE_SECONDS = 15
    settings.VIGIL_SCORE_MAX_INTERRUPTIONS = 2
    upload = make_upload(uploader)
    for worker in ("first", "second"):  # each worker claims it, then dies mid-scoring
        assert upload_lease_claim(upload_id=upload.pk, status=PENDING, owner=worker, count_attempt=True)
        _silence(upload, 60)
        uploads_requeue_stale(older_than_seconds=300)
    upload.refresh_from_db()
    assert (upload.status, upload.lease_interruptions) == (PENDING, 2)

    result = upload_score(upload_id=upload.pk)  # the third delivery: not decoded again
    upload.refresh_from_db()
    assert result.status == upload.status == "failed" and result.routed_now
    assert "stopped its worker 2 times" in upload.status_reason
    assert (upload.lease_owner, upload.score_attempts) == ("", 3)
    assert not Score.objects.filter(upload=upload).exists()
    assert ReviewRound.objects.get(upload=upload).reason == ReviewRound.Reason.FAILED  # an admin sees it
    assert not upload.display
    with pytest.raises(DisplayUnavailable):
        display_ensure(upload=upload)  # the web process does not decode it either
    assert not (media_root / "display").exists()


def test_a_url_whose_fetches_keep_killing_the_worker_ends_unavailable(uploader, settings):
    settings.VIGIL_SCORE_MAX_INTERRUPTIONS = 2
    upload, _ = upload_create_from_url(submitter=uploader, url="https://images.example.com/a.jpg")
    for worker in ("first", "second"):
        assert upload_lease_claim(upload_id=upload.pk, status=Upload.Status.FETCHING, owner=worker)
        _silence(upload, 60)
        assert upload.pk in uploads_requeue_stale(older_than_seconds=300)
    assert upload_fetch(upload_id=upload.pk) == "unavailable"  # no request is made
    upload.refresh_from_db()
    assert "stopped its worker 2 times" in upload.status_reason


def test_a_fetch_in_hand_elsewhere_is_left_alone(uploader):
    upload, _ = upload_create_from_url(submitter=uploader, url="https://images.example.com/a.jpg")
    assert upload_lease_claim(upload_id=upload.pk, status=Upload.Status.FETCHING, owner="busy")
    assert upload_fetch(upload_id=upload.pk) == "fetching"
    upload.refresh_from_db()
    assert upload.lease_owner == "busy"


@pytest.mark.django_db(transaction=True)
def test_the_lease_is_renewed_while_the_work_runs(uploader, settings):
    settings.VIGIL_SCORING_LEASE_SECONDS = 3  # renewed every second
    upload = make_upload(uploader)
    upload_lease_claim(upload_id=upload.pk, status=PENDING, owner="me")
    claimed_at = Upload.objects.get(pk=upload.pk).lease_heartbeat_at
    with lease_kept_alive(upload_id=upload.pk, owner="me"):
        deadline = time.monotonic() + 60
        while Upload.objects.get(pk=upload.pk).lease_heartbeat_at == claimed_at:
            assert time.monotonic() < deadline, "the lease was never renewed"
            time.sleep(0.1)


def test_an_upload_overtaken_by_later_ones_lost_its_message_and_is_sent_again_early(uploader, settings):
    """A worker killed between taking a message and claiming the upload leaves it pending with no
    lease and no message. Uploads submitted after it being scored says so long before 300 s."""
    settings.VIGIL_SCORING_LEASE_SECONDS = 15
    lost, later, fresh = (make_upload(uploader) for _ in range(3))
    now = timezone.now()
    Upload.objects.filter(pk=lost.pk).update(updated_at=now - timedelta(seconds=60))  # idle a minute
    Upload.objects.filter(pk=later.pk).update(created_at=now - timedelta(seconds=50))
    assert uploads_requeue_stale(older_than_seconds=300) == []  # nothing after it routed yet: a queue

    Upload.objects.filter(pk=later.pk).update(status="approved", routed_at=now - timedelta(seconds=5))
    assert uploads_requeue_stale(older_than_seconds=300) == []  # routed only 5 s ago: maybe in hand

    Upload.objects.filter(pk=later.pk).update(routed_at=now - timedelta(seconds=20))
    assert uploads_requeue_stale(older_than_seconds=300) == [lost.pk]
    assert uploads_requeue_stale(older_than_seconds=300) == []  # sent once: touched, not idle now
    fresh.refresh_from_db()
    assert fresh.status == PENDING  # not idle: left alone
