"""Micro-batching in the worker: a task scoring a still image takes the still images already
waiting with it and runs the model once for all of them. A failing, corrupt or redelivered image
never blocks or double-scores the others (real baseline model, in-process; the e2e tests run
real workers)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from moderation.ml.baseline import BaselineClassifier
from moderation.models import Score, Upload
from moderation.services.leases import upload_lease_claim, uploads_lease_claim_batch
from moderation.services.scoring import upload_score, uploads_requeue_stale
from tests.factories import make_upload
from tests.images import animated, photo_frames, photo_jpeg

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

PHOTOS = ("chelsea", "coffee", "astronaut", "rocket", "motorcycle")


@pytest.fixture
def model_calls(monkeypatch):
    """The batch size of every call to the baseline model (the real model still runs)."""
    calls: list[int] = []
    original = BaselineClassifier.predict

    def counting(self, images):
        calls.append(len(images))
        return original(self, images)

    monkeypatch.setattr(BaselineClassifier, "predict", counting)
    return calls


@pytest.fixture
def resent(monkeypatch):
    """Uploads the batch sent again as tasks of their own (recorded, not published)."""
    sent: list[tuple[str, float | None]] = []
    monkeypatch.setattr(
        "moderation.services.scoring.scoring_enqueue",
        lambda upload_id, countdown=None: sent.append((str(upload_id), countdown)),
    )
    return sent


def _uploads(uploader, count: int) -> list[Upload]:
    return [make_upload(uploader, photo_jpeg(PHOTOS[i % len(PHOTOS)], quality=80 + i)) for i in range(count)]


def test_waiting_still_images_are_scored_in_one_model_call_each_with_its_own_score(uploader, model_calls, settings):
    settings.VIGIL_SCORING_BATCH_SIZE = 4
    uploads = _uploads(uploader, 5)

    result = upload_score(upload_id=uploads[0].pk)

    assert result.routed_now and model_calls == [4]  # its own and the three oldest waiting
    statuses = dict(Upload.objects.values_list("pk", "status"))
    assert [statuses[u.pk] != "pending" for u in uploads] == [True, True, True, True, False]
    for upload in uploads[:4]:
        upload.refresh_from_db()
        assert upload.score.upload_id == upload.pk and upload.phash and upload.lease_owner == ""
        assert upload.score_attempts == 1
    # Their own task messages, when they come, find them routed: nothing is scored twice.
    for upload in uploads[1:4]:
        assert not upload_score(upload_id=upload.pk).routed_now
    assert model_calls == [4]
    assert Score.objects.count() == 4


def test_a_batched_score_equals_the_score_the_image_gets_alone(uploader, settings):
    settings.VIGIL_SCORING_BATCH_SIZE = 1
    alone = [make_upload(uploader, photo_jpeg(name)) for name in PHOTOS]
    for upload in alone:
        upload_score(upload_id=upload.pk)
    settings.VIGIL_SCORING_BATCH_SIZE = 8
    together = [make_upload(uploader, photo_jpeg(name)) for name in PHOTOS]
    upload_score(upload_id=together[0].pk)
    for single, batched in zip(alone, together, strict=True):
        single.refresh_from_db()
        batched.refresh_from_db()
        assert batched.phash == single.phash
        for category, score in single.score.category_scores.items():
            assert batched.score.category_scores[category] == pytest.approx(score, abs=1e-4)
        assert batched.status == single.status


def test_a_corrupt_image_in_a_batch_goes_to_humans_alone(uploader, media_root, model_calls, resent):
    uploads = _uploads(uploader, 4)
    (media_root / uploads[2].original.name).write_bytes(b"disk corruption")

    upload_score(upload_id=uploads[0].pk)

    statuses = {u.pk: Upload.objects.get(pk=u.pk).status for u in uploads}
    assert statuses[uploads[2].pk] == "failed"
    assert all(statuses[u.pk] in ("approved", "queued", "rejected") for u in uploads if u != uploads[2])
    assert model_calls == [3] and resent == []
    assert "could not be scored" in Upload.objects.get(pk=uploads[2].pk).status_reason.lower()


def test_an_image_the_model_fails_on_is_left_to_a_retry_of_its_own_and_the_others_are_routed(
    uploader, monkeypatch, resent
):
    uploads = _uploads(uploader, 4)
    poison = uploads[1]
    original = BaselineClassifier.predict
    calls: list[int] = []

    def failing_on_the_poison(self, images):
        calls.append(len(images))
        if any(image.size == poison_size for image in images):
            raise RuntimeError("the model crashed on this picture")
        return original(self, images)

    from moderation.services.frame_scoring import _decoded_frames
    from moderation.services.intake import original_decode

    data = original_decode(poison, lambda stored: stored)
    poison_size = next(_decoded_frames(data, 256)).image.size
    assert all(
        next(_decoded_frames(original_decode(u, lambda s: s), 256)).image.size != poison_size
        for u in uploads
        if u != poison
    )
    monkeypatch.setattr(BaselineClassifier, "predict", failing_on_the_poison)

    result = upload_score(upload_id=uploads[0].pk)

    assert result.routed_now
    assert calls == [4, 1, 1, 1, 1]  # the batch, then each alone
    poison.refresh_from_db()
    assert (poison.status, poison.lease_owner, poison.score_attempts) == ("pending", "", 1)
    assert not Score.objects.filter(upload=poison).exists()
    assert resent == [(str(poison.pk), 2)]
    assert Upload.objects.filter(status="pending").count() == 1

    # The retry scores it alone (a second attempt never batches), and the model works again.
    monkeypatch.setattr(BaselineClassifier, "predict", original)
    make_upload(uploader, photo_jpeg("coffee", quality=70))  # waiting, but not batched with a retry
    retried = upload_score(upload_id=poison.pk)
    assert retried.routed_now
    assert Upload.objects.filter(status="pending").count() == 1


def test_when_its_own_image_fails_the_model_the_task_raises_after_routing_the_others(uploader, monkeypatch, resent):
    uploads = _uploads(uploader, 3)
    original = BaselineClassifier.predict
    own_size = None

    def failing_on_the_first(self, images):
        if any(image.size == own_size for image in images):
            raise RuntimeError("the model crashed on this picture")
        return original(self, images)

    from moderation.services.frame_scoring import _decoded_frames
    from moderation.services.intake import original_decode

    own_size = next(_decoded_frames(original_decode(uploads[0], lambda s: s), 256)).image.size
    monkeypatch.setattr(BaselineClassifier, "predict", failing_on_the_first)

    with pytest.raises(RuntimeError):  # the task's own autoretry takes it from here
        upload_score(upload_id=uploads[0].pk)

    statuses = [Upload.objects.get(pk=u.pk).status for u in uploads]
    assert statuses[0] == "pending" and "pending" not in statuses[1:]
    assert resent == []  # its own message is retried by Celery, not re-sent
    assert Upload.objects.get(pk=uploads[0].pk).lease_owner == ""


def test_retried_interrupted_and_leased_uploads_are_never_taken_into_a_batch(uploader, model_calls):
    fresh, retried, interrupted, leased, waiting = _uploads(uploader, 5)
    Upload.objects.filter(pk=retried.pk).update(score_attempts=1)
    Upload.objects.filter(pk=interrupted.pk).update(lease_interruptions=1)
    assert upload_lease_claim(upload_id=leased.pk, status="pending", owner="another-worker")
    gif = make_upload(uploader, animated(photo_frames(["chelsea", "rocket"])))
    assert gif.frames == 2

    taken = uploads_lease_claim_batch(owner="me", limit=10, exclude=fresh.pk)

    assert [u.pk for u in taken] == [waiting.pk]  # not its own, nor the retried, interrupted, leased or animated
    assert Upload.objects.get(pk=leased.pk).lease_owner == "another-worker"
    assert model_calls == []


def test_a_second_attempt_is_scored_alone(uploader, model_calls):
    first, *others = _uploads(uploader, 3)
    Upload.objects.filter(pk=first.pk).update(score_attempts=1)  # its first attempt failed

    upload_score(upload_id=first.pk)

    assert model_calls == [1]
    assert Upload.objects.filter(pk__in=[o.pk for o in others], status="pending").count() == 2


def test_batch_size_one_turns_batching_off(uploader, model_calls, settings):
    settings.VIGIL_SCORING_BATCH_SIZE = 1
    uploads = _uploads(uploader, 3)
    upload_score(upload_id=uploads[0].pk)
    assert model_calls == [1]
    assert Upload.objects.filter(status="pending").count() == 2


def test_a_worker_that_dies_mid_batch_leaves_each_upload_to_be_scored_alone(uploader, model_calls, settings):
    """Simulated death: the batch's leases are taken and never renewed (the real kill is in
    tests/e2e). The sweeper counts one interruption on each; each is then scored on its own, so a
    picture that kills the worker cannot take the others down with it again."""
    settings.VIGIL_SCORING_LEASE_SECONDS = 15
    uploads = _uploads(uploader, 4)
    assert upload_lease_claim(upload_id=uploads[0].pk, status="pending", owner="dead", count_attempt=True)
    assert len(uploads_lease_claim_batch(owner="dead", limit=7, exclude=uploads[0].pk)) == 3
    Upload.objects.filter(lease_owner="dead").update(lease_heartbeat_at=timezone.now() - timedelta(seconds=60))

    sent = uploads_requeue_stale(older_than_seconds=300)

    assert set(sent) == {u.pk for u in uploads}
    for upload in uploads:
        assert upload_score(upload_id=upload.pk).routed_now
    assert model_calls == [1, 1, 1, 1]
    assert set(Upload.objects.values_list("lease_interruptions", flat=True)) == {1}


def test_a_batch_routes_first_and_the_derivatives_follow_once_nothing_waits(uploader, admin_user):
    """While uploads wait to be scored, a batch puts off the display derivatives of the uploads it
    queued; the next task that finds nothing else waiting makes them."""
    from moderation.services.policies import policy_create

    queue_everything = {
        "weapon": {"approve_below": 0.0, "reject_from": 1.0},
        "nudity": {"approve_below": 0.0, "reject_from": 1.0},
    }
    policy_create(thresholds=queue_everything, reason="test", created_by=admin_user)
    batch = _uploads(uploader, 3)

    upload_score(upload_id=batch[0].pk)

    assert set(Upload.objects.filter(pk__in=[u.pk for u in batch]).values_list("status", "display")) == {("queued", "")}
    for quality in (71, 72, 73):  # each lone upload, scored with nothing else waiting, makes one more
        lone = make_upload(uploader, photo_jpeg("rocket", quality=quality))
        upload_score(upload_id=lone.pk)
        assert Upload.objects.get(pk=lone.pk).display.name.endswith(".webp")
    for upload in batch:
        upload.refresh_from_db()
        assert upload.display.name.endswith(".webp")


def test_a_derivative_that_cannot_be_made_does_not_hold_up_the_others(uploader, media_root):
    from moderation.services.display import displays_catch_up
    from tests.factories import route_with

    readable = route_with(make_upload(uploader, photo_jpeg("coffee")), {"weapon": 0.1})
    broken = route_with(make_upload(uploader, photo_jpeg("chelsea")), {"weapon": 0.1})  # the most recent
    (media_root / broken.original.name).unlink()
    assert {readable.status, broken.status} == {"queued"}

    assert displays_catch_up(limit=1) == 1

    assert Upload.objects.get(pk=readable.pk).display.name.endswith(".webp")
    assert Upload.objects.get(pk=broken.pk).display.name == ""
