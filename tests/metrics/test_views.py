import pytest
from django.urls import reverse

from accounts.roles import Role
from moderation.bins import EDGES, score_bin
from moderation.models import ThresholdPolicy, Upload
from moderation.services.policies import policy_current
from reviews.models import ReviewRound
from reviews.services.claims import round_claim
from tests.factories import make_round, make_user
from tests.metrics.helpers import labelled

PAGES = ["metrics:thresholds", "metrics:dashboard"]


@pytest.mark.django_db
@pytest.mark.parametrize("name", PAGES)
def test_insight_pages_are_for_admins_only(client, name, uploader, moderator, admin_user):
    url = reverse(name)
    assert client.get(url).url.startswith(reverse("login"))
    for user in (uploader, moderator):
        client.force_login(user)
        assert client.get(url).status_code == 403
    client.force_login(admin_user)
    assert client.get(url).status_code == 200


@pytest.mark.django_db
def test_dashboard_shows_the_published_figures(client, moderator, admin_user):
    for score, label, n in ((0.9, "harmful", 5), (0.1, "harmful", 7), (0.9, "safe", 3), (0.1, "safe", 7)):
        for _ in range(n):
            labelled(moderator, score, label)
    client.force_login(admin_user)
    response = client.get(reverse("metrics:dashboard"), {"window": "24h"})
    body = response.content.decode()
    assert response.status_code == 200
    assert '<td data-figure="precision">0.625</td>' in body
    assert '<td data-figure="recall">0.417</td>' in body
    assert '<td data-figure="f1">0.500</td>' in body
    assert '<td data-figure="accuracy">0.545</td>' in body
    assert response.context["vs_humans"].confusion == [[7, 3], [7, 5]]
    assert response.context["counts"]["scored"] == 22
    assert "<svg" in body and "ROC curve" in body


@pytest.mark.django_db
def test_dashboard_latency_and_queue_depth(client, moderator, admin_user):
    for _ in range(3):
        make_round(score=0.2)  # three open rounds
    labelled(moderator, 0.3, "safe")  # opened and closed
    client.force_login(admin_user)
    response = client.get(reverse("metrics:dashboard"))
    assert response.context["queue_now"] == 3
    assert response.context["depth"][-1][1] == 3
    assert response.context["to_human"].count == 1
    assert response.context["scoring"].count == 4


@pytest.mark.django_db
def test_saving_a_policy_records_who_and_why(client, admin_user):
    before = policy_current()
    client.force_login(admin_user)
    page = client.get(reverse("metrics:thresholds"))
    assert page.status_code == 200
    # The policy's categories and the team's (seeded: hate, other, violence at the cold start 0 / 1).
    assert [row["name"] for row in page.context["rows"]] == ["hate", "nudity", "other", "violence", "weapon"]
    data = {"reason": "fewer weapon reviews", "approve_below__weapon": "0.01", "reject_from__weapon": "0.5"}
    data |= {"approve_below__nudity": "0.2", "reject_from__nudity": "0.8"}
    response = client.post(reverse("metrics:thresholds"), data)
    assert response.status_code == 302
    policy = policy_current()
    assert policy.version == before.version + 1
    assert (policy.created_by, policy.reason) == (admin_user, "fewer weapon reviews")
    assert policy.thresholds["weapon"] == {"approve_below": 0.01, "reject_from": 0.5}
    assert sorted(policy.thresholds) == sorted(before.thresholds)  # the untouched cold-start rows stay out
    history = client.get(reverse("metrics:thresholds")).content.decode()
    assert "fewer weapon reviews" in history and f"v{policy.version}" in history


@pytest.mark.django_db
@pytest.mark.parametrize(
    "change",
    [
        {"reason": ""},
        {"approve_below__weapon": "0.6", "reject_from__weapon": "0.5"},
        {"reject_from__nudity": "lots"},
    ],
)
def test_a_bad_policy_is_a_400_and_saves_nothing(client, admin_user, change):
    policy_current()  # the cold-start policy exists before any change
    before = ThresholdPolicy.objects.count()
    client.force_login(admin_user)
    data = {"reason": "try", "approve_below__weapon": "0.01", "reject_from__weapon": "0.5"}
    data |= {"approve_below__nudity": "0.2", "reject_from__nudity": "0.8"} | change
    response = client.post(reverse("metrics:thresholds"), data)
    assert response.status_code == 400
    assert ThresholdPolicy.objects.count() == before


@pytest.mark.django_db
def test_rerouting_applies_the_new_policy_to_the_queue_but_not_to_held_items(client, admin_user, moderator):
    low, middle, held = make_round(score=0.05), make_round(score=0.3), make_round(score=0.06)
    round_claim(round_id=held.pk, moderator=moderator)
    client.force_login(admin_user)
    data = {"reason": "approve more", "approve_below__weapon": "0.1", "reject_from__weapon": "0.4"}
    data |= {"approve_below__nudity": "0.2", "reject_from__nudity": "0.8", "reroute": "on"}
    response = client.post(reverse("metrics:thresholds"), data, follow=True)
    assert "1 approved, 0 rejected, 1 still queued, 1 left with the moderators" in response.content.decode()
    low_upload = Upload.objects.get(pk=low.upload_id)
    assert (low_upload.status, low_upload.decided_by) == ("approved", "auto")
    assert "re-routed under policy" in low_upload.status_reason
    assert ReviewRound.objects.get(pk=low.pk).status == "cancelled"
    assert ReviewRound.objects.get(pk=middle.pk).status == "open"
    assert Upload.objects.get(pk=middle.upload_id).policy == policy_current()
    assert (Upload.objects.get(pk=held.upload_id).status, ReviewRound.objects.get(pk=held.pk).status) == (
        "queued",
        "open",
    )


@pytest.mark.django_db
def test_suggest_loads_thresholds_that_meet_the_targets(client, admin_user, moderator):
    for score, label, n in ((0.95, "harmful", 20), (0.6, "harmful", 10), (0.6, "safe", 10), (0.05, "safe", 20)):
        for _ in range(n):
            labelled(moderator, score, label, category="weapon" if label == "harmful" else "")
    client.force_login(admin_user)
    response = client.get(
        reverse("metrics:thresholds"),
        {"window": "24h", "suggest": "1", "min_reject_precision": "0.98", "min_harmful_recall": "0.99"},
    )
    assert response.context["suggestion"].moved == ["weapon"]
    weapon = next(row for row in response.context["rows"] if row["name"] == "weapon")
    # Everything at 0.95 is harmful, 0.6 is half and half, 0.05 is safe. Rejecting the 0.6 bin is
    # too imprecise, so reject starts just above it; approving it would let harmful ones through,
    # so approve stops just below it: the tightest edges that meet both targets.
    assert weapon["reject"] == score_bin(0.6) + 1
    assert weapon["approve"] == score_bin(0.6)
    assert weapon["approve_value"] == EDGES[score_bin(0.6)]
    projection = response.context["projection"]
    assert projection.harmful_recall >= 0.99 and projection.reject_precision >= 0.98


@pytest.mark.django_db
def test_prometheus_endpoint_needs_the_token_or_an_admin(client, settings, moderator, admin_user):
    settings.VIGIL_METRICS_TOKEN = "s3cret-token"
    make_round(score=0.2)
    labelled(moderator, 0.3, "safe")
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    client.force_login(moderator)
    assert client.get("/metrics").status_code == 401
    client.logout()
    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-token")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    assert 'vigil_uploads{status="queued"} 1.0' in text
    assert 'vigil_uploads{status="approved"} 1.0' in text
    assert 'vigil_queue_depth{reason="model"} 1.0' in text
    assert "vigil_uploads_created_total 2.0" in text
    assert 'vigil_scoring_latency_seconds_count{model_version="baseline-imagenet-nsfw-v1"} 2.0' in text
    assert 'vigil_routing_decisions_total{model_version="baseline-imagenet-nsfw-v1",outcome="queued"} 2.0' in text
    client.force_login(make_user(Role.ADMIN))
    assert client.get("/metrics").status_code == 200
