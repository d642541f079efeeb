"""Nothing lost, nothing done twice: 200 uploads, the worker killed with SIGKILL mid-way, a new
worker started. Runs on Redis (``make test-services``), the broker production uses."""

from __future__ import annotations

import os
import signal
import time

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db.models import Count

from moderation.models import Score, Upload
from moderation.services.scoring import uploads_requeue_stale
from reviews.models import ReviewRound
from tests.e2e.worker import celery_worker, purge_broker
from tests.images import solid

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not settings.CELERY_BROKER_URL.startswith("redis"), reason="needs the Redis broker"),
]

UPLOADS = 200


def routed_count(ids) -> int:
    return Upload.objects.filter(pk__in=ids).exclude(status=Upload.Status.PENDING).count()


def test_a_killed_worker_loses_no_upload_and_scores_none_twice(api, tmp_path):
    purge_broker()
    ids = []
    for i in range(UPLOADS):
        image = solid((48, 32), color=(i % 256, (i * 7) % 256, (i * 13) % 256))
        response = api.post("/api/v1/uploads/", {"image": SimpleUploadedFile(f"{i}.jpg", image)}, format="multipart")
        assert response.status_code == 201, response.content
        ids.append(response.json()["id"])

    with celery_worker(tmp_path / "first.log") as worker:
        deadline = time.monotonic() + 180
        while routed_count(ids) < UPLOADS // 4:
            assert time.monotonic() < deadline, "the first worker made no progress"
            time.sleep(0.05)
        os.killpg(worker.pid, signal.SIGKILL)  # the worker and its pool, mid-task, no goodbye
        worker.wait()
    before_restart = routed_count(ids)
    assert UPLOADS // 4 <= before_restart < UPLOADS

    with celery_worker(tmp_path / "second.log"):
        deadline = time.monotonic() + 240
        last, idle_since = -1, time.monotonic()
        while (done := routed_count(ids)) < UPLOADS:
            assert time.monotonic() < deadline, f"only {done} of {UPLOADS} routed"
            if done != last:
                last, idle_since = done, time.monotonic()
            elif time.monotonic() - idle_since > 5:
                # The message the killed worker held stays unacknowledged on Redis until its
                # visibility timeout; beat's sweeper re-enqueues such uploads. Run it now.
                uploads_requeue_stale(older_than_seconds=1)
                idle_since = time.monotonic()
            time.sleep(0.2)

    uploads = Upload.objects.filter(pk__in=ids)
    assert not uploads.filter(status__in=[Upload.Status.PENDING, Upload.Status.FAILED]).exists()
    assert not uploads.filter(routed_at__isnull=True).exists()
    per_upload = Score.objects.filter(upload_id__in=ids).values("upload_id").annotate(n=Count("id"))
    assert len(per_upload) == UPLOADS and {row["n"] for row in per_upload} == {1}
    assert uploads.filter(score__isnull=True).count() == 0
    queued = uploads.filter(status=Upload.Status.QUEUED).count()
    assert ReviewRound.objects.filter(upload_id__in=ids).count() == queued  # one round per queued upload
