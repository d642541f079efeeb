"""A platform integration on real processes: a scoring worker and a separate webhooks worker (as on
two machines), uploads by file and by URL from a real HTTP server, signed webhooks to a real
receiver that fails once, and a human decision delivered the same way."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from collections import Counter
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from accounts.services import api_client_create
from integrations.models import WebhookDelivery
from moderation.models import Upload
from moderation.services.model_versions import model_version_ensure_active, model_version_export_serving
from reviews.services.claims import round_claim
from reviews.services.decisions import decision_create
from tests.e2e.scenario import policy_queueing_the_astronaut, post_photos
from tests.e2e.worker import celery_worker, purge_broker
from tests.http_receiver import Answer
from tests.images import photo_jpeg

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


# Generous: each wait polls for an event, and the suite runs on loaded 2-core machines (issue 17).
BOUND = 300


def wait_for(condition, what: str, timeout: float = BOUND, explain=lambda: ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}\n{explain()}")


def tasks_in_hand(log: Path, task: str) -> set[str]:
    """Ids of ``task`` messages a worker received (an ETA retry: as soon as it arrives) and has not
    finished yet, from its log."""
    text = log.read_text(errors="replace")
    received = set(re.findall(rf"Task {re.escape(task)}\[([0-9a-f-]+)\] received", text))
    finished = set(re.findall(rf"Task {re.escape(task)}\[([0-9a-f-]+)\] (?:succeeded|failed|raised|retry)", text))
    return received - finished


def queue_length(queue: str) -> int:
    """Messages waiting in ``queue`` on the broker (any transport). Redis keeps no empty queue, so
    its passive declare of one answers NOT_FOUND: nothing waits there."""
    from amqp.exceptions import ChannelError

    from config.celery import app

    with app.connection_for_write() as connection:
        try:
            return connection.default_channel.queue_declare(queue, passive=True).message_count
        except ChannelError as exc:
            if getattr(exc, "reply_code", None) == 404 or "NOT_FOUND" in str(exc):
                return 0
            raise


def state(tmp_path: Path) -> str:
    """What the deliveries, uploads and workers were doing, for a timeout's message."""
    deliveries = list(WebhookDelivery.objects.values_list("event", "status", "attempts", "next_attempt_at"))
    uploads = list(Upload.objects.values_list("external_id", "status"))
    logs = "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in sorted(tmp_path.glob("*.log")))
    return f"deliveries: {deliveries}\nuploads: {uploads}\n{logs}"


def signed_correctly(secret: str, request) -> bool:
    expected = hmac.new(
        secret.encode(), request.headers["Vigil-Timestamp"].encode() + b"." + request.body, hashlib.sha256
    ).hexdigest()
    return hmac.compare_digest(request.headers["Vigil-Signature"], f"v1={expected}")


def test_files_and_urls_are_scored_and_every_outcome_is_delivered_once(
    tmp_path, receiver, allow_loopback, admin_user, moderator
):
    policy_queueing_the_astronaut(admin_user)
    # Served from its ONNX export, as after bootstrap_demo: the worker never imports torch.
    model_version_export_serving(model_version=model_version_ensure_active())
    _, token = api_client_create(name="platform")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    secret = api.put("/api/v1/webhook/", {"url": receiver.url("/hook")}, format="json").json()["secret"]
    receiver.answers["/hook"] = [Answer(status=500, body=b"down for a moment"), Answer(status=200)]
    receiver.answers["/cdn/coffee.jpg"] = [Answer(body=photo_jpeg("coffee"), headers={"Content-Type": "image/jpeg"})]
    receiver.answers["/cdn/missing.jpg"] = [Answer(status=404)]

    purge_broker()
    ids = post_photos(api, ("chelsea", "astronaut"))
    for name in ("coffee", "missing"):
        response = api.post(
            "/api/v1/uploads/", {"url": receiver.url(f"/cdn/{name}.jpg"), "external_id": name}, format="json"
        )
        assert response.status_code == 202, response.content
        ids[name] = response.json()["id"]

    hooks_env = {"VIGIL_WEBHOOK_BACKOFF_SECONDS": "0.5"}
    with (
        celery_worker(tmp_path / "scoring.log", queues="scoring,celery", name="scoring"),
        celery_worker(tmp_path / "hooks.log", queues="fetch,webhooks", name="hooks", env=hooks_env),
    ):
        wait_for(
            lambda: WebhookDelivery.objects.filter(status="succeeded").count() == 3,
            "three delivered webhooks",
            explain=lambda: state(tmp_path),
        )
        uploads = {u.external_id: u for u in Upload.objects.all()}
        assert (uploads["chelsea"].status, uploads["chelsea"].decided_by) == ("approved", "auto")
        assert (uploads["coffee"].status, uploads["coffee"].decided_by) == ("approved", "auto")
        assert uploads["coffee"].sha256 == hashlib.sha256(photo_jpeg("coffee")).hexdigest()
        assert uploads["missing"].status == "unavailable"
        assert uploads["astronaut"].status == "queued"

        # A moderator decides the queued photo; the webhooks worker delivers that too.
        round_ = uploads["astronaut"].review_rounds.get()
        round_claim(round_id=round_.pk, moderator=moderator)
        decision_create(round_id=round_.pk, moderator=moderator, label="harmful", category="weapon")
        wait_for(
            lambda: WebhookDelivery.objects.filter(status="succeeded").count() == 4,
            "the human decision",
            explain=lambda: state(tmp_path),
        )
        # Any duplicate would come from a delivery message still on the broker or in the webhooks
        # worker's hands: wait until the queue is empty and the worker has finished every message
        # it received, twice in a row (a message on its way between the two is seen the next time).
        quiet = []
        wait_for(
            lambda: (
                quiet.append(
                    queue_length("webhooks") == 0
                    and not tasks_in_hand(tmp_path / "hooks.log", "integrations.tasks.deliver_webhook")
                )
                or quiet[-2:] == [True, True]
            ),
            "the webhooks worker to finish every delivery message",
            explain=lambda: state(tmp_path),
        )

    hooks = receiver.to("/hook")
    assert all(signed_correctly(secret, r) for r in hooks)
    events = [(json.loads(r.body)["upload"]["external_id"], json.loads(r.body)["event"]) for r in hooks]
    # The first POST got a 500 and was retried: one delivery id twice, every other exactly once.
    per_delivery = Counter(r.headers["Vigil-Delivery"] for r in hooks)
    assert sorted(per_delivery.values()) == [1, 1, 1, 2]
    assert set(events) == {
        ("chelsea", "upload.decided"),
        ("coffee", "upload.decided"),
        ("missing", "upload.unavailable"),
        ("astronaut", "upload.decided"),
    }
    human = next(
        json.loads(r.body)["upload"] for r in hooks if json.loads(r.body)["upload"]["external_id"] == "astronaut"
    )
    assert (human["status"], human["decided_by"], human["decision"]["label"]) == ("rejected", "human", "harmful")
    assert len(receiver.to("/cdn/coffee.jpg")) == 1

    # Each worker did only its own queue's work.
    scoring_log = (tmp_path / "scoring.log").read_text()
    assert "with ONNX Runtime" in scoring_log and "with torch" not in scoring_log
    hooks_log = (tmp_path / "hooks.log").read_text()
    for task, where in (
        ("moderation.tasks.score_upload", "scoring"),
        ("moderation.tasks.fetch_remote_upload", "hooks"),
        ("integrations.tasks.deliver_webhook", "hooks"),
    ):
        ran = {"scoring": f"Task {task}[" in scoring_log, "hooks": f"Task {task}[" in hooks_log}
        assert ran == {"scoring": where == "scoring", "hooks": where == "hooks"}, task
