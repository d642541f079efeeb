"""The whole loop on real processes: API upload -> Celery worker scores -> routing -> human decision."""

from __future__ import annotations

import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from moderation.models import Score, Upload
from reviews.models import Decision
from tests.e2e.scenario import policy_queueing_the_astronaut, post_photos
from tests.e2e.worker import celery_worker, purge_broker
from tests.images import photo_jpeg

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def wait_until_routed(ids: list[str], timeout: float = 120) -> dict[str, Upload]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        uploads = {str(u.pk): u for u in Upload.objects.filter(pk__in=ids).select_related("score__model_version")}
        if all(u.status != Upload.Status.PENDING for u in uploads.values()):
            return uploads
        time.sleep(0.25)
    raise AssertionError(f"not routed in {timeout}s: {Upload.objects.filter(pk__in=ids).values_list('status')}")


def test_uploads_are_scored_by_a_real_worker_and_routed(api, tmp_path, client, moderator, admin_user):
    policy_queueing_the_astronaut(admin_user)
    purge_broker()
    # Uploaded before the worker starts: the messages wait on the broker meanwhile.
    ids = post_photos(api, ("chelsea", "coffee", "astronaut", "rocket"))
    # The rocket's stored original is damaged after intake: it must reach humans as failed.
    Upload.objects.get(pk=ids["rocket"]).original.open("wb").write(b"damaged on disk")

    with celery_worker(tmp_path / "worker.log"):
        uploads = wait_until_routed(list(ids.values()))

    for name in ("chelsea", "coffee"):
        assert (uploads[ids[name]].status, uploads[ids[name]].decided_by) == ("approved", "auto"), name
    astronaut = uploads[ids["astronaut"]]
    assert astronaut.status == "queued" and astronaut.decided_by == ""
    assert Score.objects.filter(upload_id__in=ids.values()).count() == 3
    rocket = uploads[ids["rocket"]]
    assert rocket.status == "failed" and "could not be scored" in rocket.status_reason.lower()

    body = api.get(f"/api/v1/uploads/{ids['chelsea']}/").json()
    assert body["status"] == "approved" and body["decided_by"] == "auto"
    assert body["model_version"] == "baseline-imagenet-nsfw-v1"
    assert set(body["category_scores"]) == {"weapon", "nudity"}
    assert body["harmful_score"] == max(body["category_scores"].values())
    assert body["decision"]["label"] == "safe"

    # A moderator signs in and decides the queued photo; the API then shows the human decision.
    signed_in = client.post(reverse("login"), {"username": moderator.username, "password": "pw-for-tests-1"})
    assert signed_in.status_code == 302
    queue = client.get(reverse("reviews:queue") + "?ordering=oldest")
    rounds = {str(r.upload_id): r for r in queue.context["page"]}
    assert set(rounds) == {ids["astronaut"], ids["rocket"]}
    assert (rounds[ids["astronaut"]].reason, rounds[ids["rocket"]].reason) == ("model", "failed")
    client.get(reverse("reviews:round", args=[rounds[ids["astronaut"]].pk]))
    client.post(reverse("reviews:decide", args=[rounds[ids["astronaut"]].pk]), {"label": "safe"})
    decision = Decision.objects.get(upload_id=ids["astronaut"])
    assert decision.model_score == astronaut.score.harmful_score
    body = api.get(f"/api/v1/uploads/{ids['astronaut']}/").json()
    assert (body["status"], body["decided_by"], body["decision"]["label"]) == ("approved", "human", "safe")


def test_a_running_worker_switches_to_the_newly_active_model_without_a_restart(
    api, tmp_path, settings, tiny_checkpoint
):
    from moderation.services.model_versions import (
        BASELINE_NAME,
        model_version_activate,
        model_version_ensure_active,
        model_version_register,
    )

    settings.VIGIL_MODEL_DIR = tmp_path / "models"
    model_version_ensure_active()
    purge_broker()

    def upload(name: str) -> str:
        response = api.post("/api/v1/uploads/", {"image": SimpleUploadedFile(f"{name}.jpg", photo_jpeg(name))})
        assert response.status_code == 201, response.content
        return response.json()["id"]

    with celery_worker(tmp_path / "worker.log"):
        before = upload("rocket")
        assert wait_until_routed([before])[before].score.model_version.name == BASELINE_NAME
        candidate = model_version_register(checkpoint=tiny_checkpoint, name="tiny-e2e")
        model_version_activate(model_version=candidate)
        after = upload("rocket")
        routed = wait_until_routed([after])[after]
    assert routed.score.model_version == candidate
    assert set(routed.score.category_scores) == {"weapon", "nudity"}
    assert "loading model version tiny-e2e" in (tmp_path / "worker.log").read_text()
