"""The threshold page: exact thresholds in and out, and figures that say what they rest on."""

import re

import pytest
from django.urls import reverse

from moderation.bins import EDGES, threshold_position
from moderation.services.policies import policy_create, policy_current
from tests.metrics.helpers import labelled_scores

ROUND = {"weapon": {"approve_below": 0.2, "reject_from": 0.4}, "nudity": {"approve_below": 0.2, "reject_from": 0.8}}
SUGGEST = {"window": "24h", "suggest": "1", "min_reject_precision": "0.98", "min_harmful_recall": "0.99"}


def number_input(body: str, name: str) -> str:
    """The value of the page's numeric input called ``name``."""
    tag = re.search(rf'<input type="number" name="{name}"[^>]*>', body)
    assert tag, f"no numeric input {name}"
    assert 'step="any"' in tag[0] and 'min="0"' in tag[0] and 'max="1"' in tag[0]
    return re.search(r'value="([^"]*)"', tag[0])[1]


def slider(body: str, category: str, kind: str) -> int:
    row = re.search(rf'<tr data-category="{category}">.*?</tr>', body, re.S)[0]
    return int(re.search(rf'<input type="range"[^>]*value="(\d+)" data-kind="{kind}"', row)[1])


@pytest.mark.django_db
def test_the_numbers_hold_the_policys_exact_values_and_the_sliders_their_nearest_edges(client, admin_user):
    policy_create(thresholds=ROUND, reason="round numbers", created_by=admin_user)
    client.force_login(admin_user)
    body = client.get(reverse("metrics:thresholds")).content.decode()
    for name, bounds in ROUND.items():
        for bound, value in bounds.items():
            assert float(number_input(body, f"{bound}__{name}")) == value
            assert number_input(body, f"{bound}__{name}") == repr(value)
            assert slider(body, name, bound.split("_")[0]) == threshold_position(value)
    assert EDGES[threshold_position(0.2)] != 0.2  # the edge is not the policy's number
    assert 'type="hidden" name="approve_below__' not in body
    assert "the projection places a typed value at its nearest bin edge" in body


@pytest.mark.django_db
def test_an_untouched_form_saves_the_same_policy(client, admin_user):
    policy_create(thresholds=ROUND, reason="round numbers", created_by=admin_user)
    client.force_login(admin_user)
    body = client.get(reverse("metrics:thresholds")).content.decode()
    data = {f"{b}__{n}": number_input(body, f"{b}__{n}") for n in ROUND for b in ROUND[n]}
    assert client.post(reverse("metrics:thresholds"), {**data, "reason": "same again"}).status_code == 302
    assert policy_current().thresholds == ROUND


@pytest.mark.django_db
def test_a_refused_policy_is_shown_again_as_posted(client, admin_user):
    client.force_login(admin_user)
    data = {"reason": "", "approve_below__weapon": "0.0123", "reject_from__weapon": "0.5"}
    data |= {"approve_below__nudity": "0.2", "reject_from__nudity": "0.8"}
    body = client.post(reverse("metrics:thresholds"), data).content.decode()
    assert number_input(body, "approve_below__weapon") == "0.0123"


def label_both(moderator, weapon: float, nudity: float, label: str, category: str, n: int) -> None:
    for _ in range(n):
        labelled_scores(moderator, {"weapon": weapon, "nudity": nudity}, label, category)


@pytest.mark.django_db
def test_suggest_proposes_no_number_for_a_category_without_enough_labels(client, admin_user, moderator):
    """Reproduction 4: 30 labels, none of them nudity. Weapon-harmful images also score 0.43 on
    nudity, which alone made Suggest propose nudity 0.4256 / 0.4256."""
    label_both(moderator, 0.95, 0.43, "harmful", "weapon", 15)
    label_both(moderator, 0.01, 0.01, "safe", "", 15)
    client.force_login(admin_user)
    response = client.get(reverse("metrics:thresholds"), SUGGEST)
    body = response.content.decode()
    assert "nudity: not enough labels — 0 harmful labelled nudity, 15 safe; need 30 of each" in body
    assert "weapon: not enough labels — 15 harmful labelled weapon, 15 safe; need 30 of each" in body
    assert "Suggested thresholds loaded" not in body
    policy = policy_current().thresholds
    for name in ("nudity", "weapon"):
        for bound in ("approve_below", "reject_from"):
            assert number_input(body, f"{bound}__{name}") == repr(policy[name][bound])
    # The projection's per-category figures say the same.
    nudity = next(c for c in response.context["projection"].categories if c.name == "nudity")
    assert (nudity.harmful, str(nudity.recall)) == (0, "not enough labels (0 of 30)")
    assert '<td data-out="recall:nudity">not enough labels (0 of 30)</td>' in body


@pytest.mark.django_db
def test_suggest_proposes_a_number_once_a_category_has_enough_labels(client, admin_user, moderator):
    label_both(moderator, 0.95, 0.43, "harmful", "weapon", 15)
    label_both(moderator, 0.01, 0.01, "safe", "", 15)
    label_both(moderator, 0.01, 0.97, "harmful", "nudity", 30)
    label_both(moderator, 0.01, 0.3, "safe", "", 15)
    client.force_login(admin_user)
    response = client.get(reverse("metrics:thresholds"), SUGGEST)
    body = response.content.decode()
    suggestion = response.context["suggestion"]
    assert suggestion.moved == ["nudity"]
    # Weapon has too few labels; the seeded team categories nothing scores have none.
    assert sorted(suggestion.held) == ["hate", "other", "violence", "weapon"]
    assert "Suggested thresholds loaded for nudity" in body
    a, r = suggestion.positions["nudity"]
    assert number_input(body, "approve_below__nudity") == repr(EDGES[a])  # Suggest loads edges
    assert number_input(body, "reject_from__nudity") == repr(EDGES[r])
    assert (a, r) != (threshold_position(0.2), threshold_position(0.8))
    assert number_input(body, "reject_from__weapon") == repr(policy_current().thresholds["weapon"]["reject_from"])
    nudity = next(c for c in response.context["projection"].categories if c.name == "nudity")
    assert nudity.harmful == 30 and nudity.recall.enough and nudity.recall.value == 1.0
    assert f'<td data-out="recall:nudity">{nudity.recall}</td>' in body
    assert str(nudity.recall).startswith("1.0000 (0.886–1.000, n = 30)")


def posted(thresholds: dict, **extra) -> dict:
    return {f"{b}__{n}": repr(v) for n, bounds in thresholds.items() for b, v in bounds.items()} | extra


@pytest.mark.django_db
def test_a_policy_with_no_human_band_needs_the_confirmation_and_is_shown_as_such(client, admin_user):
    """Reproduction 1's weapon 0.8838–0.8838: saved only when confirmed, then flagged."""
    policy_create(thresholds=ROUND, reason="round numbers", created_by=admin_user)
    client.force_login(admin_user)
    bandless = {**ROUND, "weapon": {"approve_below": 0.8838, "reject_from": 0.8838}}
    refused = client.post(reverse("metrics:thresholds"), posted(bandless, reason="as suggested"))
    body = refused.content.decode()
    assert refused.status_code == 400 and "weapon: approve_below equals reject_from" in body
    assert re.search(r'<label class="check warning" id="band-confirm">', body)  # shown, not hidden
    assert policy_current().thresholds == ROUND

    saved = client.post(
        reverse("metrics:thresholds"), posted(bandless, reason="as suggested", confirm_no_human_band="on")
    )
    assert saved.status_code == 302
    assert policy_current().thresholds == bandless and policy_current().without_human_band == ["weapon"]
    body = client.get(reverse("metrics:thresholds")).content.decode()
    assert 'id="policy-no-band"' in body and "no human band: weapon" in body
    assert re.search(r'<label class="check warning" id="band-confirm">', body)  # loaded bandless: ask again


@pytest.mark.django_db
def candidate_suggesting(suggested: dict, *, name: str):
    """A candidate version (the baseline's weights under another name) whose metrics suggest ``suggested``."""
    from moderation.models import ModelVersion
    from moderation.services.model_versions import model_version_ensure_active

    base = model_version_ensure_active()
    return ModelVersion.objects.create(
        name=name,
        architecture=base.architecture,
        weights=base.weights,
        weights_sha256=name[0] * 64,
        metrics={"suggested_thresholds": suggested},
    )


def test_a_models_draft_is_loaded_saved_exactly_and_marked_applied(client, admin_user):
    from moderation.models import PolicyDraft
    from moderation.services.policies import policy_draft_propose

    mine = policy_create(thresholds=ROUND, reason="round numbers", created_by=admin_user)
    suggested = {"weapon": {"approve_below": 0.012345, "reject_from": 0.97}}
    candidate = candidate_suggesting(suggested, name="cand")
    draft = policy_draft_propose(model_version=candidate)
    assert draft.thresholds == {**ROUND, **suggested} and policy_current() == mine
    client.force_login(admin_user)
    page = client.get(reverse("metrics:thresholds")).content.decode()
    assert f'data-draft="{draft.pk}"' in page and "weapon 0.012345–0.97" in page

    loaded = client.get(reverse("metrics:thresholds"), {"draft": draft.pk, "model": "cand"}).content.decode()
    assert number_input(loaded, "approve_below__weapon") == "0.012345"
    assert number_input(loaded, "reject_from__nudity") == "0.8"
    assert f'name="draft" value="{draft.pk}"' in loaded and 'id="draft-loaded"' in loaded
    response = client.post(
        f"{reverse('metrics:thresholds')}?draft={draft.pk}&model=cand",
        posted(draft.thresholds, reason="cand's thresholds, checked", draft=draft.pk),
    )
    assert response.status_code == 302 and "draft=" not in response.url
    assert policy_current().thresholds == draft.thresholds
    draft.refresh_from_db()
    assert (draft.status, draft.policy, draft.resolved_by) == ("applied", policy_current(), admin_user)

    other = policy_draft_propose(model_version=candidate.__class__.objects.get(pk=candidate.pk))
    assert other is None  # nothing left to propose: the policy already holds them
    second = PolicyDraft.objects.create(model_version=candidate, thresholds=ROUND, reason="x")
    client.post(reverse("metrics:draft_dismiss", args=[second.pk]))
    second.refresh_from_db()
    assert second.status == "dismissed" and policy_current().thresholds == draft.thresholds


@pytest.mark.django_db
def test_a_draft_without_a_human_band_says_so_where_admins_read_it(client, admin_user):
    from moderation.services.policies import policy_draft_propose

    policy_create(thresholds=ROUND, reason="round numbers", created_by=admin_user)
    candidate = candidate_suggesting({"weapon": {"approve_below": 0.812, "reject_from": 0.812}}, name="narrow")
    draft = policy_draft_propose(model_version=candidate)
    assert "WARNING: no human band for weapon" in draft.reason
    client.force_login(admin_user)
    page = client.get(reverse("metrics:thresholds")).content.decode()
    assert "weapon 0.812–0.812 <strong>(no human band)</strong>" in page
    assert "WARNING: no human band for weapon" in page


@pytest.mark.django_db
def test_each_category_has_its_own_roc_against_the_labels_naming_it(client, admin_user, moderator):
    label_both(moderator, 0.95, 0.43, "harmful", "weapon", 4)
    label_both(moderator, 0.01, 0.97, "harmful", "nudity", 3)
    label_both(moderator, 0.01, 0.5, "safe", "", 5)
    client.force_login(admin_user)
    response = client.get(reverse("metrics:thresholds"))
    curves = {curve.name: curve for curve, _ in response.context["category_charts"]}
    assert (curves["weapon"].harmful, curves["weapon"].safe, curves["weapon"].roc_auc) == (4, 5, 1.0)
    # Nudity scores 0.97 on its own harmful images and 0.5 on the safe ones: separated too.
    assert (curves["nudity"].harmful, curves["nudity"].safe, curves["nudity"].roc_auc) == (3, 5, 1.0)
    # A team category nothing scores yet has no labels and no curve, and says so.
    assert (curves["violence"].harmful, curves["violence"].roc_auc) == (0, None)
    body = response.content.decode()
    assert '<figure data-category-chart="weapon">' in body and "AUC 1.000" in body
    assert "violence: its score against harmful labels naming it (0) and safe labels (0); no curve" in body
