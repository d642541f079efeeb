"""A worker killed with SIGKILL mid-scoring, on whatever broker the suite runs (the embedded
filesystem broker deletes a message when a worker fetches it, so nothing can redeliver it): the
upload's lease expires, beat's sweeper sends it again, and another worker scores it, once.

Real processes: two workers, beat, the default lease and sweep interval. Prints the measured time
from the kill to the upload being in another worker's hands, and to it being routed."""

from __future__ import annotations

import os
import signal
import time

import pytest
from django.test import Client
from PIL import Image

from moderation.models import Score, Upload, WorkerHeartbeat
from moderation.services.scoring import uploads_requeue_stale
from moderation.tasks import score_upload
from tests.e2e.worker import celery_beat, celery_worker, purge_broker
from tests.factories import make_upload
from tests.videos import encode_video

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def wait_for(condition, *, timeout: float, what: str, poll: float = 0.1):
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(poll)
    return value


def test_an_upload_whose_worker_is_killed_mid_scoring_is_scored_again_within_the_bound(
    uploader, tmp_path, monkeypatch, settings
):
    purge_broker()
    # The doomed worker consumes a queue of its own, so the first message surely goes to it and the
    # survivor (the scoring queue, housekeeping) only ever sees what the sweeper sends again.
    monkeypatch.setattr(
        "moderation.services.intake.scoring_enqueue",
        lambda upload_id: score_upload.apply_async([str(upload_id)], queue="scoring-doomed"),
    )
    # Two minutes of video: about a hundred sampled frames, seconds of scoring to be killed in.
    video = encode_video(lambda i: Image.new("RGB", (96, 64), (i % 200, 90, 160)), frames=240, fps=2)

    with (
        celery_worker(tmp_path / "survivor.log", queues="scoring,celery", name="survivor"),
        celery_beat(tmp_path / "beat.log"),
        celery_worker(tmp_path / "doomed.log", queues="scoring-doomed", name="doomed") as doomed,
    ):
        upload = make_upload(uploader, video)
        assert upload.kind == Upload.Kind.VIDEO
        owner = wait_for(
            lambda: (
                Upload.objects.filter(pk=upload.pk, lease_owner__startswith="doomed")
                .values_list("lease_owner", flat=True)
                .first()
            ),
            timeout=120,
            what="the doomed worker to claim the video",
        )
        os.killpg(doomed.pid, signal.SIGKILL)  # the worker and its pool, mid-task, no goodbye
        killed_at = time.monotonic()
        doomed.wait()
        assert Upload.objects.get(pk=upload.pk).status == Upload.Status.PENDING

        wait_for(
            lambda: (
                Upload.objects.filter(pk=upload.pk, lease_owner__startswith="survivor").exists()
                or Upload.objects.get(pk=upload.pk).status != Upload.Status.PENDING
            ),
            timeout=120,
            what="the survivor to take the upload over",
        )
        taken_over = time.monotonic() - killed_at
        wait_for(
            lambda: Upload.objects.get(pk=upload.pk).status != Upload.Status.PENDING,
            timeout=180,
            what="the upload to be routed",
        )
        routed = time.monotonic() - killed_at
        print(
            f"\nkill -9 mid-scoring on the {settings.CELERY_BROKER_URL.split(':')[0]} broker: "
            f"in another worker's hands {taken_over:.1f} s after the kill, routed after {routed:.1f} s "
            f"(lease {settings.VIGIL_SCORING_LEASE_SECONDS} s, sweep every {settings.VIGIL_SWEEP_INTERVAL_SECONDS} s)"
        )
        upload.refresh_from_db()
        assert upload.lease_owner == "" and upload.lease_interruptions == 1 and upload.score_attempts == 2
        assert Score.objects.filter(upload=upload).count() == 1
        # Target 30 s (lease 15 s + a sweep every 10 s + delivery); generous for a loaded machine.
        assert taken_over < 60, f"took {taken_over:.1f} s"
        assert owner.startswith("doomed")

        # Heartbeats: the survivor is alive; the killed worker's row stays, ageing.
        survivor = WorkerHeartbeat.objects.get(hostname__startswith="survivor")
        assert "scoring" in survivor.queues
        assert WorkerHeartbeat.objects.filter(hostname__startswith="doomed").exists()
        assert Client().get("/readyz").json()["status"] == "ok"

    # The survivor stopped cleanly and removed its row: nothing scores now, and readiness says so.
    body = Client().get("/readyz").json()
    assert (body["status"], body["scoring"]["workers_alive"]) == ("degraded", 0)
    assert not WorkerHeartbeat.objects.filter(hostname__startswith="survivor").exists()


def test_a_stuck_attempt_stops_its_worker_and_the_upload_is_sent_again(uploader, tmp_path, settings):
    """An attempt longer than VIGIL_SCORING_MAX_SECONDS is presumed stuck: the worker (thread
    pool, as make run starts it) exits for its supervisor to restart, and the lease it stopped
    renewing expires, so the sweeper sends the upload again, one interruption counted."""
    purge_broker()
    settings.VIGIL_SCORING_LEASE_SECONDS = 3
    flicker = [Image.effect_noise((320, 240), 100).convert("RGB") for _ in range(4)]
    video = encode_video(lambda i: flicker[i % 4], frames=480, fps=4, size=(320, 240))  # seconds of scoring
    stuck_env = {"VIGIL_SCORING_MAX_SECONDS": "1", "VIGIL_SCORING_LEASE_SECONDS": "3"}
    with celery_worker(tmp_path / "stuck.log", queues="scoring", name="stuck", pool="threads", env=stuck_env) as worker:
        upload = make_upload(uploader, video)
        exit_code = wait_for(worker.poll, timeout=180, what="the stuck worker to stop")
    assert exit_code == 70
    assert "presumed stuck" in (tmp_path / "stuck.log").read_text()
    upload.refresh_from_db()
    assert (upload.status, upload.lease_owner[:5], upload.lease_interruptions) == ("pending", "stuck", 0)

    sent = wait_for(
        lambda: uploads_requeue_stale(older_than_seconds=settings.VIGIL_PENDING_SWEEP_AFTER_SECONDS),
        timeout=60,
        what="the lease to expire and the sweeper to send the upload again",
    )
    upload.refresh_from_db()
    assert sent == [upload.pk] and (upload.lease_owner, upload.lease_interruptions) == ("", 1)
    purge_broker()
