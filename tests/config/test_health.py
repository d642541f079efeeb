from datetime import timedelta

import pytest
from django.utils import timezone

from moderation.heartbeat import worker_heartbeat_record
from moderation.models import Upload
from tests.factories import make_upload


def _scoring_worker_alive(name: str = "w1@host") -> None:
    worker_heartbeat_record(hostname=name, queues=["celery", "scoring"], started_at=timezone.now())


def test_healthz_answers_without_the_database(client):
    response = client.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.django_db
def test_readyz_checks_the_database_the_broker_and_the_scoring_workers(client):
    _scoring_worker_alive()
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "database": "ok",
        "broker": "ok",
        "scoring": {"workers_alive": 1, "oldest_pending_seconds": 0.0},
    }


@pytest.mark.django_db
def test_readyz_is_degraded_but_200_without_a_live_scoring_worker(client, settings):
    settings.VIGIL_WORKER_STALE_SECONDS = 30
    worker_heartbeat_record(hostname="webhooks@host", queues=["webhooks"], started_at=timezone.now())
    _scoring_worker_alive("gone@host")
    from moderation.models import WorkerHeartbeat

    WorkerHeartbeat.objects.filter(hostname="gone@host").update(last_seen_at=timezone.now() - timedelta(seconds=31))
    response = client.get("/readyz")
    assert response.status_code == 200  # the web still takes uploads: they wait, pending
    body = response.json()
    assert (body["status"], body["database"], body["broker"]) == ("degraded", "ok", "ok")
    assert body["scoring"]["workers_alive"] == 0
    assert body["reasons"] == ["no scoring worker has reported in the last 30 s"]


@pytest.mark.django_db
def test_readyz_is_degraded_when_the_oldest_pending_upload_waits_too_long(client, settings, uploader):
    settings.VIGIL_READY_PENDING_MAX_SECONDS = 120
    _scoring_worker_alive()  # alive, but not consuming
    upload = make_upload(uploader)
    Upload.objects.filter(pk=upload.pk).update(created_at=timezone.now() - timedelta(seconds=200))
    body = client.get("/readyz").json()
    assert body["status"] == "degraded"
    assert body["scoring"]["workers_alive"] == 1 and body["scoring"]["oldest_pending_seconds"] >= 200
    assert "the oldest pending upload has waited" in body["reasons"][0]
    Upload.objects.filter(pk=upload.pk).update(status=Upload.Status.FAILED)
    assert client.get("/readyz").json()["status"] == "ok"


@pytest.mark.django_db
def test_readyz_says_which_part_is_down(client, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {}
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert (body["status"], body["database"]) == ("unavailable", "ok")
    assert body["broker"].startswith("error:")


@pytest.mark.django_db
def test_metrics_expose_the_workers_and_the_oldest_pending_upload(client, settings, uploader):
    settings.VIGIL_METRICS_TOKEN = "t0ken"
    settings.VIGIL_READY_PENDING_MAX_SECONDS = 120

    def gauges() -> dict[str, float]:
        text = client.get("/metrics", HTTP_AUTHORIZATION="Bearer t0ken").content.decode()
        return {k: float(v) for k, v in (line.rsplit(" ", 1) for line in text.splitlines() if line[:1] != "#")}

    assert gauges()["vigil_scoring_workers_alive"] == 0 and gauges()["vigil_degraded"] == 1
    _scoring_worker_alive()
    worker_heartbeat_record(hostname="hooks@host", queues=["webhooks"], started_at=timezone.now())
    upload = make_upload(uploader)
    Upload.objects.filter(pk=upload.pk).update(created_at=timezone.now() - timedelta(seconds=60))
    now = gauges()
    assert now["vigil_scoring_workers_alive"] == 1
    assert now['vigil_workers_alive{queue="webhooks"}'] == 1 and now['vigil_workers_alive{queue="scoring"}'] == 1
    assert 60 <= now["vigil_oldest_pending_upload_seconds"] < 120
    assert now["vigil_degraded"] == 0
    Upload.objects.filter(pk=upload.pk).update(lease_interruptions=2)
    assert gauges()["vigil_scoring_interruptions_total"] == 2


@pytest.mark.django_db
def test_staff_pages_warn_when_uploads_are_not_being_scored(client, uploader, moderator, admin_user):
    for user, page in ((admin_user, "/insights/dashboard/"), (admin_user, "/admin/"), (moderator, "/review/")):
        client.force_login(user)
        html = client.get(page).content.decode()
        assert 'id="scoring-health-banner"' in html, page
        assert "no scoring worker has reported" in html
    client.force_login(uploader)
    assert 'id="scoring-health-banner"' not in client.get("/uploads/").content.decode()
    _scoring_worker_alive()
    client.force_login(admin_user)
    assert 'id="scoring-health-banner"' not in client.get("/insights/dashboard/").content.decode()
