"""Webhooks: registration, signed delivery to a real receiver, retries, no duplicates, redelivery."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest
from rest_framework.test import APIClient

from accounts.services import api_client_create
from integrations.models import WebhookAttempt, WebhookDelivery
from integrations.services.webhooks import (
    backoff_seconds,
    deliveries_requeue_due,
    delivery_redeliver,
    delivery_send,
    webhook_clear,
    webhook_set,
)
from integrations.signing import verify
from reviews.services.claims import round_claim
from reviews.services.decisions import decision_create, decision_undo
from tests.factories import make_round, make_upload, route_with
from tests.http_receiver import Answer

pytestmark = pytest.mark.django_db

SAFE = {"weapon": 0.0001, "nudity": 0.0001}
HARMFUL = {"weapon": 0.999, "nudity": 0.0001}


@pytest.fixture
def client_with_hook(receiver, allow_loopback):
    client, token = api_client_create(name="platform")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    response = api.put("/api/v1/webhook/", {"url": receiver.url("/hook")}, format="json")
    assert response.status_code == 200, response.content
    client.refresh_from_db()
    return client


def expected_signature(secret: str, timestamp: str, body: bytes) -> str:
    """Computed here from the documented recipe, not with the code under test."""
    return "v1=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def test_registration_api(api, api_client_and_token, settings, allow_loopback):
    assert api.get("/api/v1/webhook/").status_code == 404
    response = api.put("/api/v1/webhook/", {"url": "https://hooks.example.com/vigil"}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert body["url"] == "https://hooks.example.com/vigil"
    assert body["secret"].startswith("whsec_") and len(body["secret"]) > 40
    assert api.get("/api/v1/webhook/").json() == body
    # Changing the URL keeps the secret; rotating replaces it.
    changed = api.put("/api/v1/webhook/", {"url": "https://hooks.example.com/v2"}, format="json").json()
    assert changed["secret"] == body["secret"]
    rotated = api.post("/api/v1/webhook/secret/").json()
    assert rotated["secret"] != body["secret"] and rotated["url"] == "https://hooks.example.com/v2"

    refused = {
        "http://10.0.0.8/hook": "Refused: 10.0.0.8 is a private address. An admin can allow it.",
        "https://169.254.169.254/": "Refused: 169.254.169.254 is a link-local address. An admin can allow it.",
        "ftp://example.com/": "Only http and https URLs are accepted.",
    }
    for url, message in refused.items():
        response = api.put("/api/v1/webhook/", {"url": url}, format="json")
        assert (response.status_code, response.json()) == (400, {"url": [message]})
    settings.VIGIL_WEBHOOK_ALLOW_HTTP = False
    response = api.put("/api/v1/webhook/", {"url": "http://hooks.example.com/"}, format="json")
    assert response.status_code == 400 and "must use https" in response.json()["url"][0]

    assert api.delete("/api/v1/webhook/").status_code == 204
    assert api.get("/api/v1/webhook/").status_code == 404


def test_registration_needs_an_api_client(uploader):
    session = APIClient()
    session.force_authenticate(uploader)
    response = session.get("/api/v1/webhook/")
    assert (response.status_code, response.json()) == (403, {"detail": "Only API clients have webhooks."})
    assert APIClient().get("/api/v1/webhook/").status_code == 401


def test_auto_decision_is_delivered_signed(client_with_hook, receiver, django_capture_on_commit_callbacks):
    upload = make_upload(client_with_hook.user, external_id="p-1")
    with django_capture_on_commit_callbacks() as enqueued:
        route_with(upload, SAFE)
    [delivery] = WebhookDelivery.objects.all()
    assert (delivery.event, delivery.status, delivery.client) == ("upload.decided", "pending", client_with_hook)
    assert len(enqueued) == 1  # the send is enqueued only once the routing committed

    assert delivery_send(delivery_id=delivery.pk) == "succeeded"
    [request] = receiver.to("/hook")
    assert request.method == "POST"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Vigil-Event"] == "upload.decided"
    assert request.headers["Vigil-Delivery"] == str(delivery.pk)
    assert request.headers["Vigil-Attempt"] == "1"
    timestamp = request.headers["Vigil-Timestamp"]
    assert abs(int(timestamp) - time.time()) < 30
    secret = client_with_hook.webhook_secret
    assert request.headers["Vigil-Signature"] == expected_signature(secret, timestamp, request.body)
    assert verify(secret, request.body, timestamp=timestamp, signature_header=request.headers["Vigil-Signature"])
    assert not verify(
        "whsec_wrong", request.body, timestamp=timestamp, signature_header=request.headers["Vigil-Signature"]
    )
    assert not verify(
        secret, request.body + b" ", timestamp=timestamp, signature_header=request.headers["Vigil-Signature"]
    )
    assert not verify(
        secret,
        request.body,
        timestamp=timestamp,
        signature_header=request.headers["Vigil-Signature"],
        now=time.time() + 600,
    )

    payload = json.loads(request.body)
    assert payload["id"] == str(delivery.pk) and payload["event"] == "upload.decided"
    assert payload["upload"]["id"] == str(upload.pk)
    assert payload["upload"]["external_id"] == "p-1"
    assert (payload["upload"]["status"], payload["upload"]["decided_by"]) == ("approved", "auto")
    assert payload["upload"]["decision"]["label"] == "safe"
    assert payload["upload"]["category_scores"] == SAFE

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("succeeded", 1) and delivery.delivered_at is not None
    attempt = WebhookAttempt.objects.get(delivery=delivery)
    assert (attempt.number, attempt.response_status, attempt.response_body, attempt.error) == (1, 200, "ok", "")


def test_retry_after_500_then_success_and_never_again(client_with_hook, receiver, settings):
    settings.VIGIL_WEBHOOK_BACKOFF_SECONDS = 0.5
    receiver.answers["/hook"] = [Answer(status=500, body=b"boom"), Answer(status=200)]
    route_with(make_upload(client_with_hook.user), HARMFUL)
    delivery = WebhookDelivery.objects.get()

    assert delivery_send(delivery_id=delivery.pk) == "pending"
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("pending", 1)
    assert delivery.next_attempt_at > delivery.created_at
    assert delivery_send(delivery_id=delivery.pk) is None  # not due yet: no second POST
    assert len(receiver.to("/hook")) == 1

    time.sleep(0.6)
    assert delivery_send(delivery_id=delivery.pk) == "succeeded"
    first, second = receiver.to("/hook")
    assert first.body == second.body  # the same bytes, re-signed
    assert (first.headers["Vigil-Attempt"], second.headers["Vigil-Attempt"]) == ("1", "2")
    assert first.headers["Vigil-Delivery"] == second.headers["Vigil-Delivery"] == str(delivery.pk)
    assert json.loads(second.body)["upload"]["status"] == "rejected"
    attempts = list(
        WebhookAttempt.objects.filter(delivery=delivery).values_list("number", "response_status", "response_body")
    )
    assert attempts == [(1, 500, "boom"), (2, 200, "ok")]

    # A redelivered task message, or the sweeper, after success: nothing more is sent.
    assert delivery_send(delivery_id=delivery.pk) is None
    assert deliveries_requeue_due(grace_seconds=0) == []
    assert len(receiver.to("/hook")) == 2


def test_gives_up_after_max_attempts_and_an_admin_redelivers(client_with_hook, receiver, settings):
    settings.VIGIL_WEBHOOK_MAX_ATTEMPTS = 2
    settings.VIGIL_WEBHOOK_BACKOFF_SECONDS = 0.05
    receiver.answers["/hook"] = [Answer(status=503), Answer(status=502), Answer(status=204)]
    route_with(make_upload(client_with_hook.user), SAFE)
    delivery = WebhookDelivery.objects.get()
    assert delivery_send(delivery_id=delivery.pk) == "pending"
    time.sleep(0.1)
    assert delivery_send(delivery_id=delivery.pk) == "failed"
    time.sleep(0.1)
    assert delivery_send(delivery_id=delivery.pk) is None
    assert deliveries_requeue_due(grace_seconds=0) == []

    assert delivery_redeliver(delivery_id=delivery.pk)
    assert delivery_send(delivery_id=delivery.pk) == "succeeded"
    delivery.refresh_from_db()
    assert (delivery.attempts, delivery.max_attempts) == (3, 4)
    assert [r.headers["Vigil-Attempt"] for r in receiver.to("/hook")] == ["1", "2", "3"]


def test_unreachable_receiver_is_recorded_and_retried(client_with_hook, settings):
    settings.VIGIL_WEBHOOK_TIMEOUT_SECONDS = 1
    client_with_hook.webhook_url = "http://127.0.0.1:9/hook"  # discard port: nothing listens
    client_with_hook.save()
    route_with(make_upload(client_with_hook.user), SAFE)
    delivery = WebhookDelivery.objects.get()
    assert delivery_send(delivery_id=delivery.pk) == "pending"
    attempt = WebhookAttempt.objects.get(delivery=delivery)
    assert attempt.response_status is None and "connection refused" in attempt.error


def test_sweeper_sends_what_went_missing(client_with_hook, receiver):
    route_with(make_upload(client_with_hook.user), SAFE)
    delivery = WebhookDelivery.objects.get()
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=delivery.created_at.replace(year=2020))
    assert deliveries_requeue_due() == [delivery.pk]
    # A worker that died mid-send leaves the row "sending"; after its lease it is sent again.
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status="sending", lease_expires_at=delivery.created_at)
    assert deliveries_requeue_due() == [delivery.pk]
    assert delivery_send(delivery_id=delivery.pk) == "succeeded"
    assert len(receiver.to("/hook")) == 1


def test_backoff_doubles_up_to_the_cap(settings):
    settings.VIGIL_WEBHOOK_BACKOFF_SECONDS = 30
    settings.VIGIL_WEBHOOK_BACKOFF_MAX_SECONDS = 3600
    assert [backoff_seconds(n) for n in range(1, 10)] == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]


def test_human_decisions_and_undo_are_delivered(client_with_hook, receiver, moderator):
    upload = make_upload(client_with_hook.user)
    round_ = make_round(upload, score=0.4)
    assert not WebhookDelivery.objects.exists()  # queued for humans: nothing final yet
    round_claim(round_id=round_.pk, moderator=moderator)
    decision_create(round_id=round_.pk, moderator=moderator, label="harmful", category="weapon")
    decision_undo(moderator=moderator)
    events = list(WebhookDelivery.objects.order_by("created_at").values_list("event", flat=True))
    assert events == ["upload.decided", "upload.reopened"]
    for delivery in WebhookDelivery.objects.order_by("created_at"):
        assert delivery_send(delivery_id=delivery.pk) == "succeeded"
    decided, reopened = (json.loads(r.body)["upload"] for r in receiver.to("/hook"))
    assert (decided["status"], decided["decided_by"], decided["decision"]["label"]) == ("rejected", "human", "harmful")
    assert (reopened["status"], reopened["decided_by"], reopened["decision"]) == ("queued", None, None)


def test_no_webhook_no_delivery(api_client_and_token, uploader):
    route_with(make_upload(api_client_and_token[0].user), SAFE)  # a client without a URL
    route_with(make_upload(uploader), SAFE)  # a person, not an API client
    assert not WebhookDelivery.objects.exists()


def test_a_cleared_webhook_fails_its_pending_deliveries_at_once(client_with_hook, receiver):
    route_with(make_upload(client_with_hook.user), SAFE)
    delivery = WebhookDelivery.objects.get()
    webhook_clear(client=client_with_hook)
    assert delivery_send(delivery_id=delivery.pk) == "failed"
    assert "no webhook URL" in WebhookAttempt.objects.get(delivery=delivery).error
    assert receiver.to("/hook") == []


def test_a_hostile_answer_is_recorded_safely(client_with_hook, receiver):
    receiver.answers["/hook"] = [Answer(status=200, body=b"ok\x00\xff" + b"x" * 5000)]
    route_with(make_upload(client_with_hook.user), SAFE)
    delivery = WebhookDelivery.objects.get()
    assert delivery_send(delivery_id=delivery.pk) == "succeeded"
    stored = WebhookAttempt.objects.get(delivery=delivery).response_body
    assert stored.startswith("ok\ufffd\ufffd") and len(stored) == 1000


def test_an_attempt_that_lost_its_claim_does_not_settle(client_with_hook, receiver):
    from integrations.services.webhooks import _settle

    route_with(make_upload(client_with_hook.user), SAFE)
    delivery = WebhookDelivery.objects.get()
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status="sending", attempts=1)
    stale = WebhookDelivery.objects.get(pk=delivery.pk)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(attempts=2)  # re-claimed after the lease ran out
    assert _settle(stale, succeeded=False) == "pending"
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("sending", 2)  # the newer attempt still owns it


def test_policy_and_model_changes_reach_every_client_signed(client_with_hook, receiver, admin_user, tmp_path):
    """``policy.changed`` and ``model.changed`` go to every client with a webhook (no upload),
    written in the change's transaction and signed like every other event."""
    from moderation.models import ModelVersion
    from moderation.services.model_versions import model_version_ensure_active, model_version_shadow
    from moderation.services.policies import policy_create

    other, _ = api_client_create(name="other-platform")
    webhook_set(client=other, url=receiver.url("/other"))
    api_client_create(name="no-hook")
    baseline = model_version_ensure_active()
    assert not WebhookDelivery.objects.exists()  # a first activation is no change

    thresholds = {
        "weapon": {"approve_below": 0.1, "reject_from": 0.9},
        "nudity": {"approve_below": 0.2, "reject_from": 0.8},
    }
    policy = policy_create(thresholds=thresholds, reason="fewer rejects", created_by=admin_user)
    candidate = ModelVersion.objects.create(
        name="cand", architecture=baseline.architecture, weights=baseline.weights, weights_sha256="x" * 64
    )
    model_version_shadow(model_version=candidate, user=admin_user)

    deliveries = WebhookDelivery.objects.order_by("created_at", "client_id")
    assert [(d.event, d.client.name, d.upload_id) for d in deliveries] == [
        ("policy.changed", "platform", None),
        ("policy.changed", "other-platform", None),
        ("model.changed", "platform", None),
        ("model.changed", "other-platform", None),
    ]
    for delivery in deliveries:
        assert delivery_send(delivery_id=delivery.pk) == "succeeded"
    [first, second] = receiver.to("/hook")
    assert first.headers["Vigil-Event"] == "policy.changed"
    secret = client_with_hook.webhook_secret
    assert first.headers["Vigil-Signature"] == expected_signature(secret, first.headers["Vigil-Timestamp"], first.body)
    body = json.loads(first.body)
    assert body["change"]["action"] == "saved" and body["change"]["policy_version"] == policy.version
    assert body["policy"] == {
        "version": policy.version,
        "thresholds": thresholds,
        "created_at": body["policy"]["created_at"],
    }
    assert body["active_model"]["name"] == baseline.name and "upload" not in body
    shadow = json.loads(second.body)
    assert (shadow["event"], shadow["change"]["action"], shadow["shadow_models"]) == (
        "model.changed",
        "shadow",
        ["cand"],
    )
    assert len(receiver.to("/other")) == 2


def _redeliver_form(page: str, delivery) -> dict:
    """The Redeliver form's fields for ``delivery`` as the admin's page rendered them."""
    import re

    form = re.search(rf'action="/integrations/webhooks/{delivery.pk}/redeliver/".*?</form>', page, re.S).group(0)
    return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', form))


def test_redeliver_on_a_delivery_waiting_to_retry_never_sends_twice(client_with_hook, receiver, settings, client):
    """The admin's page shows a delivery waiting to retry; its retry runs (and succeeds) before the
    click lands. The click must not send the event again: it is fenced on the attempt the page
    showed, as the retry path is fenced on its claim. Before the fence this sent it twice."""
    from accounts.roles import Role
    from tests.factories import make_user

    settings.VIGIL_WEBHOOK_BACKOFF_SECONDS = 0.05
    receiver.answers["/hook"] = [Answer(status=500), Answer(status=200), Answer(status=200)]
    route_with(make_upload(client_with_hook.user), SAFE)
    delivery = WebhookDelivery.objects.get()
    assert delivery_send(delivery_id=delivery.pk) == "pending"  # waiting to retry

    client.force_login(make_user(Role.ADMIN, username="boss"))
    page = client.get("/integrations/webhooks/").content.decode()
    fields = _redeliver_form(page, delivery)
    assert fields["attempts"] == "1"

    time.sleep(0.1)
    assert delivery_send(delivery_id=delivery.pk) == "succeeded"  # the scheduled retry
    response = client.post(f"/integrations/webhooks/{delivery.pk}/redeliver/", fields, follow=True)
    assert "was attempted again since" in response.content.decode()
    assert delivery_send(delivery_id=delivery.pk) is None  # whatever message is still out there
    assert len(receiver.to("/hook")) == 2
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("succeeded", 2)


def test_redeliver_hurries_a_waiting_retry_and_the_scheduled_one_sends_nothing(client_with_hook, receiver, settings):
    settings.VIGIL_WEBHOOK_BACKOFF_SECONDS = 0.05
    receiver.answers["/hook"] = [Answer(status=500), Answer(status=200), Answer(status=200)]
    route_with(make_upload(client_with_hook.user), SAFE)
    delivery = WebhookDelivery.objects.get()
    assert delivery_send(delivery_id=delivery.pk) == "pending"
    assert delivery_redeliver(delivery_id=delivery.pk, seen_attempts=1)
    assert not delivery_redeliver(delivery_id=delivery.pk, seen_attempts=0)  # a staler page: refused
    # The redelivery's message and the retry's own message both arrive: one POST.
    assert delivery_send(delivery_id=delivery.pk) == "succeeded"
    time.sleep(0.1)
    assert delivery_send(delivery_id=delivery.pk) is None
    assert [r.headers["Vigil-Attempt"] for r in receiver.to("/hook")] == ["1", "2"]
