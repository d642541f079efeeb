"""Every URL and API endpoint × every role, anonymous included: the status each one gets.

A URL added to the project without a row here fails ``test_every_url_is_in_the_matrix``, so the
matrix stays complete. Codes: 200 shown, 302 redirected (to sign in, for anonymous), 401/403
refused, 404 hidden (someone else's upload). An API token grants the API only: on the web pages
its holder is anonymous.
"""

from __future__ import annotations

import pytest
from django.urls import NoReverseMatch, URLPattern, URLResolver, get_resolver, reverse
from django.utils.timezone import now
from rest_framework.test import APIClient

from accounts.roles import Role
from accounts.services import api_client_create
from feedback.models import TrainingRun
from integrations.models import WebhookDelivery
from integrations.services.webhooks import webhook_set
from moderation.models import PolicyDraft
from moderation.services.model_versions import model_version_ensure_active
from tests.factories import make_round, make_upload, make_user

ROLES = ("anonymous", "uploader", "other_uploader", "moderator", "admin", "api_client")

# name: (method, {role: expected status})
MATRIX: dict[str, tuple[str, dict[str, int]]] = {
    "home": (
        "get",
        {"anonymous": 302, "uploader": 302, "other_uploader": 302, "moderator": 302, "admin": 302, "api_client": 302},
    ),
    "login": ("get", dict.fromkeys(ROLES, 200)),
    "moderation:uploads": (
        "get",
        {"anonymous": 302, "uploader": 200, "other_uploader": 200, "moderator": 200, "admin": 200, "api_client": 302},
    ),
    "moderation:upload": (
        "get",
        {"anonymous": 302, "uploader": 200, "other_uploader": 404, "moderator": 200, "admin": 200, "api_client": 302},
    ),
    "moderation:upload_image": (
        "get",
        {"anonymous": 302, "uploader": 200, "other_uploader": 404, "moderator": 200, "admin": 200, "api_client": 302},
    ),
    "moderation:upload_frame": (
        "get",
        {"anonymous": 302, "uploader": 200, "other_uploader": 404, "moderator": 200, "admin": 200, "api_client": 302},
    ),
    # The world's upload is an image: the player's view is for videos only (tests/moderation/test_views.py).
    "moderation:upload_video": (
        "get",
        {"anonymous": 302, "uploader": 404, "other_uploader": 404, "moderator": 404, "admin": 404, "api_client": 302},
    ),
    "moderation:upload_original": (
        "get",
        {"anonymous": 302, "uploader": 200, "other_uploader": 404, "moderator": 200, "admin": 200, "api_client": 302},
    ),
    "reviews:queue": (
        "get",
        {"anonymous": 302, "uploader": 403, "other_uploader": 403, "moderator": 200, "admin": 200, "api_client": 302},
    ),
    "reviews:next": (
        "get",
        {"anonymous": 302, "uploader": 403, "other_uploader": 403, "moderator": 302, "admin": 302, "api_client": 302},
    ),
    "reviews:grid": (
        "get",
        {"anonymous": 302, "uploader": 403, "other_uploader": 403, "moderator": 200, "admin": 200, "api_client": 302},
    ),
    "reviews:undo": (
        "post",
        {"anonymous": 302, "uploader": 403, "other_uploader": 403, "moderator": 302, "admin": 302, "api_client": 302},
    ),
    "reviews:preferences": (
        "get",
        {"anonymous": 302, "uploader": 403, "other_uploader": 403, "moderator": 200, "admin": 200, "api_client": 302},
    ),
    "reviews:stats": (
        "get",
        {"anonymous": 302, "uploader": 403, "other_uploader": 403, "moderator": 200, "admin": 200, "api_client": 302},
    ),
    "reviews:counts": (
        "get",
        {"anonymous": 302, "uploader": 403, "other_uploader": 403, "moderator": 200, "admin": 200, "api_client": 302},
    ),
    "reviews:round": (
        "get",
        {"anonymous": 302, "uploader": 403, "other_uploader": 403, "moderator": 200, "admin": 200, "api_client": 302},
    ),
    "reviews:decide": (
        "post",
        {"anonymous": 302, "uploader": 403, "other_uploader": 403, "moderator": 400, "admin": 400, "api_client": 302},
    ),
    "reviews:decide_group": (
        "post",
        {"anonymous": 302, "uploader": 403, "other_uploader": 403, "moderator": 400, "admin": 400, "api_client": 302},
    ),
    "reviews:skip": (
        "post",
        {"anonymous": 302, "uploader": 403, "other_uploader": 403, "moderator": 302, "admin": 302, "api_client": 302},
    ),
    "reviews:lease": (
        "post",
        {"anonymous": 302, "uploader": 403, "other_uploader": 403, "moderator": 409, "admin": 409, "api_client": 302},
    ),
    "reviews:decisions": (
        "get",
        {"anonymous": 302, "uploader": 403, "other_uploader": 403, "moderator": 200, "admin": 200, "api_client": 302},
    ),
    # Someone else's decision: the moderator is refused (a message and a redirect, nothing
    # reopened; tests/reviews/test_decisions_page.py), an admin reopens it.
    "reviews:decision_change": (
        "post",
        {"anonymous": 302, "uploader": 403, "other_uploader": 403, "moderator": 302, "admin": 302, "api_client": 302},
    ),
    "reviews:upload_reopen": (
        "post",
        {"anonymous": 302, "uploader": 403, "other_uploader": 403, "moderator": 403, "admin": 302, "api_client": 302},
    ),
    "metrics:thresholds": (
        "get",
        {"anonymous": 302, "uploader": 403, "other_uploader": 403, "moderator": 403, "admin": 200, "api_client": 302},
    ),
    "metrics:dashboard": (
        "get",
        {"anonymous": 302, "uploader": 403, "other_uploader": 403, "moderator": 403, "admin": 200, "api_client": 302},
    ),
    "feedback:export": (
        "get",
        {"anonymous": 302, "uploader": 403, "other_uploader": 403, "moderator": 403, "admin": 200, "api_client": 302},
    ),
    "feedback:training": (
        "get",
        {"anonymous": 302, "uploader": 403, "other_uploader": 403, "moderator": 403, "admin": 200, "api_client": 302},
    ),
    "feedback:training_run": (
        "get",
        {"anonymous": 302, "uploader": 403, "other_uploader": 403, "moderator": 403, "admin": 200, "api_client": 302},
    ),
    "feedback:models": (
        "get",
        {"anonymous": 302, "uploader": 403, "other_uploader": 403, "moderator": 403, "admin": 200, "api_client": 302},
    ),
    "feedback:model_action": (
        "post",
        {"anonymous": 302, "uploader": 403, "other_uploader": 403, "moderator": 403, "admin": 302, "api_client": 302},
    ),
    "metrics:draft_dismiss": (
        "post",
        {"anonymous": 302, "uploader": 403, "other_uploader": 403, "moderator": 403, "admin": 302, "api_client": 302},
    ),
    "feedback:changes": (
        "get",
        {"anonymous": 302, "uploader": 403, "other_uploader": 403, "moderator": 403, "admin": 200, "api_client": 302},
    ),
    "feedback:changes_acknowledge": (
        "post",
        {"anonymous": 302, "uploader": 403, "other_uploader": 403, "moderator": 403, "admin": 302, "api_client": 302},
    ),
    "integrations:deliveries": (
        "get",
        {"anonymous": 302, "uploader": 403, "other_uploader": 403, "moderator": 403, "admin": 200, "api_client": 302},
    ),
    "integrations:redeliver": (
        "post",
        {"anonymous": 302, "uploader": 403, "other_uploader": 403, "moderator": 403, "admin": 302, "api_client": 302},
    ),
    "prometheus-metrics": (
        "get",
        {"anonymous": 401, "uploader": 401, "other_uploader": 401, "moderator": 401, "admin": 200, "api_client": 401},
    ),
    "api-uploads": (
        "get",
        {"anonymous": 401, "uploader": 200, "other_uploader": 200, "moderator": 200, "admin": 200, "api_client": 200},
    ),
    "api-upload": (
        "get",
        {"anonymous": 401, "uploader": 200, "other_uploader": 404, "moderator": 200, "admin": 200, "api_client": 404},
    ),
    # Platforms and the team may ask whether a picture is on a hash list; plain uploaders may not.
    # No input: a 400, once allowed.
    "api-hash-match": (
        "post",
        {"anonymous": 401, "uploader": 403, "other_uploader": 403, "moderator": 400, "admin": 400, "api_client": 400},
    ),
    # Webhook registration belongs to API clients; signed-in people have none.
    "api-webhook": (
        "get",
        {"anonymous": 401, "uploader": 403, "other_uploader": 403, "moderator": 403, "admin": 403, "api_client": 200},
    ),
    "api-webhook-secret": (
        "post",
        {"anonymous": 401, "uploader": 403, "other_uploader": 403, "moderator": 403, "admin": 403, "api_client": 200},
    ),
    # The API's description is public, as for most APIs; every endpoint it describes is not.
    "api-schema": (
        "get",
        {"anonymous": 200, "uploader": 200, "other_uploader": 200, "moderator": 200, "admin": 200, "api_client": 200},
    ),
    "api-docs": (
        "get",
        {"anonymous": 200, "uploader": 200, "other_uploader": 200, "moderator": 200, "admin": 200, "api_client": 200},
    ),
    # Django's admin site: staff (admins) only; everyone else is sent to its sign-in page.
    "admin:index": (
        "get",
        {"anonymous": 302, "uploader": 302, "other_uploader": 302, "moderator": 302, "admin": 200, "api_client": 302},
    ),
    "favicon": ("get", dict.fromkeys(ROLES, 301)),
    "healthz": ("get", dict.fromkeys(ROLES, 200)),
    "readyz": ("get", dict.fromkeys(ROLES, 200)),
    # Last: it ends the session.
    "logout": ("post", dict.fromkeys(ROLES, 302)),
}


def named_urls(patterns=None, namespace: str = "") -> set[str]:
    names = set()
    for pattern in patterns if patterns is not None else get_resolver().url_patterns:
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}:{pattern.namespace}".strip(":") if pattern.namespace else namespace
            names |= named_urls(pattern.url_patterns, inner)
        elif isinstance(pattern, URLPattern) and pattern.name:
            names.add(f"{namespace}:{pattern.name}".strip(":"))
    return names


def test_every_url_is_in_the_matrix():
    project = {n for n in named_urls() if not n.startswith("admin:")} | {"admin:index"}
    assert project == set(MATRIX), "add the new URL to MATRIX with the status each role should get"


@pytest.fixture
def world(db):
    uploader = make_user(Role.UPLOADER, username="owner")
    round_ = make_round(make_upload(uploader), score=0.2)
    api_client, token = api_client_create(name="platform")
    webhook_set(client=api_client, url="https://hooks.example.com/vigil")
    delivery = WebhookDelivery.objects.create(
        client=api_client,
        upload=round_.upload,
        event="upload.decided",
        body="{}",
        max_attempts=1,
        next_attempt_at=now(),
    )
    return {
        "users": {
            "uploader": uploader,
            "other_uploader": make_user(Role.UPLOADER, username="stranger"),
            "moderator": make_user(Role.MODERATOR, username="mod"),
            "admin": make_user(Role.ADMIN, username="boss"),
        },
        "token": token,
        "args": {
            "upload_id": round_.upload_id,
            "index": 0,  # with upload_id: the frame of an upload
            "round_id": round_.pk,
            "run_id": TrainingRun.objects.create(trigger="admin").pk,
            "version_id": model_version_ensure_active().pk,
            "delivery_id": delivery.pk,
            "decision_id": _someone_elses_decision().pk,
            "draft_id": PolicyDraft.objects.create(
                model_version=model_version_ensure_active(), thresholds={}, reason="test"
            ).pk,
        },
    }


def _someone_elses_decision():
    from reviews.services.claims import round_claim
    from reviews.services.decisions import decision_create

    other = make_user(Role.MODERATOR, username="other-mod")
    held = round_claim(round_id=make_round(score=0.3).pk, moderator=other)
    return decision_create(round_id=held.pk, moderator=other, label="harmful")


def _url(name: str, args: dict) -> str:
    """The URL, with whichever id its pattern takes."""
    try:
        return reverse(name)
    except NoReverseMatch:
        pass
    for key, value in args.items():
        try:
            return reverse(name, kwargs={key: value})
        except NoReverseMatch:
            continue
    for key, value in args.items():
        if key == "upload_id":
            continue
        try:
            return reverse(name, kwargs={"upload_id": args["upload_id"], key: value})
        except NoReverseMatch:
            continue
    raise AssertionError(f"cannot build {name}")


@pytest.mark.parametrize("role", ROLES)
def test_each_role_gets_the_expected_status_everywhere(client, world, role):
    api = APIClient()
    if role == "api_client":
        api.credentials(HTTP_AUTHORIZATION=f"Token {world['token']}")
        http = api
    elif role == "anonymous":
        http = client
    else:
        client.force_login(world["users"][role])
        http = client
    seen = {}
    for name, (method, _) in MATRIX.items():
        url = _url(name, world["args"])
        response = getattr(http, method)(url)
        seen[name] = response.status_code
    wanted = {name: expected[role] for name, (_, expected) in MATRIX.items()}
    assert seen == wanted
