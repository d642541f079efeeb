"""The whole feedback loop with real images: decisions → export → retrain → candidate with
metrics → promotion rule (held: too few held-out images) → shadow → promote (confirmed; the policy
stays, its thresholds wait as a draft) → new uploads scored by the new model → roll back."""

from pathlib import Path

import pytest
from django.core.management import call_command
from django.urls import reverse

from feedback.models import TrainingRun
from moderation.models import Change, ModelEvent, ModelVersion, PolicyDraft, Score, Upload
from moderation.services.model_versions import BASELINE_NAME
from moderation.services.policies import policy_create, policy_current
from moderation.services.scoring import upload_score
from reviews.services.claims import round_claim
from reviews.services.decisions import decision_create
from tests.factories import make_round, make_upload
from tests.images import photo_jpeg


@pytest.fixture
def retrain_settings(settings, tmp_path):
    settings.VIGIL_MODEL_DIR = tmp_path / "models"
    settings.VAR_DIR = tmp_path / "var"
    settings.VIGIL_RETRAIN_BACKBONE = "efficientnet_lite0"
    settings.VIGIL_RETRAIN_IMAGE_SIZE = 128
    settings.VIGIL_RETRAIN_EPOCHS = 6
    settings.VIGIL_RETRAIN_AUG_VIEWS = 1
    settings.VIGIL_RETRAIN_MIN_LABELS = 20
    settings.VIGIL_RETRAIN_VAL_FRACTION = 0.3
    settings.VIGIL_PROMOTION_AUTO = True  # the rule decides, with the defaults' sample-size minimum
    settings.VIGIL_RETRAIN_SUGGEST_MIN_PER_CLASS = 2  # a handful of val images: exercise the draft path
    settings.VIGIL_RETRAIN_BASE_DATA = ""
    return settings


def label_dataset(moderator, root: Path) -> int:
    count = 0
    for path in sorted(root.glob("*/*/*.jpg")):
        round_ = make_round(make_upload(data=path.read_bytes()), score=0.3)
        round_claim(round_id=round_.pk, moderator=moderator)
        decision_create(round_id=round_.pk, moderator=moderator, label=path.parent.name)
        count += 1
    return count


HAND_TUNED = {
    "weapon": {"approve_below": 0.2, "reject_from": 0.4},
    "nudity": {"approve_below": 0.2, "reject_from": 0.8},
}


@pytest.mark.slow
@pytest.mark.django_db
def test_the_feedback_loop_end_to_end(retrain_settings, tiny_dataset, moderator, admin_user, client):
    labelled = label_dataset(moderator, tiny_dataset)
    assert labelled == 30
    mine = policy_create(thresholds=HAND_TUNED, reason="tuned by hand", created_by=admin_user)

    # Too few new labels: the scheduled run skips itself.
    retrain_settings.VIGIL_RETRAIN_MIN_LABELS = 1000
    call_command("retrain")
    assert TrainingRun.objects.get().status == "skipped"

    # Reproduction 1: "even with few new labels" trained on 30 labels and evaluated on a handful
    # of held-out images, which used to promote itself and replace the admin's policy.
    call_command("retrain", "--force")
    run = TrainingRun.objects.filter(status="succeeded").get()
    assert (run.labels, run.new_labels, run.progress, run.forced) == (30, 30, 1.0, True)
    assert "exported 30 labelled images" in run.log and "trained in" in run.log
    # 8 held-out images: too few to fit a temperature, and the run says so.
    assert "calibration temperature 1.0000" in run.log and "validation images (< 20)" in run.log
    candidate = run.candidate
    assert candidate.status == "candidate" and candidate.architecture == "harmfulnet"
    heldout = candidate.metrics["heldout"]
    n = round(0.3 * 15)
    assert heldout["candidate"]["images"] == heldout["active"]["images"] == 2 * n  # same held-out images
    assert heldout["active_name"] == BASELINE_NAME
    assert heldout["candidate"]["roc_auc"] > 0.9  # rockets and motorbikes vs cats and coffee
    assert 0 <= heldout["candidate"]["ece"] <= 1 and 0 <= heldout["active"]["ece"] <= 1
    assert candidate.metrics["calibration"]["temperature"] == 1.0
    verdict = heldout["verdict"]
    assert (verdict["promote"], verdict["rule"]) == (False, "sample_size")
    assert verdict["reasons"][0] == f"held-out set too small ({n} harmful, {n} safe; need 50 harmful and 50 safe)"
    assert "forced run (started even with few new labels): never promoted automatically" in verdict["reasons"]
    assert verdict["figures"]["auc"]["interval"] is None  # under 5 images a class: not estimable
    assert "rule: sample_size" in run.log and "held-out set too small" in run.log
    assert ModelEvent.objects.filter(model_version=candidate, action="held").exists()
    assert not run.promoted
    assert ModelVersion.objects.get(status="active").name == BASELINE_NAME
    assert policy_current() == mine  # nothing replaced the admin's policy
    assert not PolicyDraft.objects.exists() and not Change.objects.filter(kind="model").exists()

    # Shadow: the candidate scores new uploads beside the active model, which alone routes.
    client.force_login(admin_user)
    client.post(reverse("feedback:model_action", args=[candidate.pk]), {"action": "shadow"})
    candidate.refresh_from_db()
    assert candidate.status == "shadow"
    shadowed = make_upload(data=photo_jpeg("astronaut"))
    upload_score(upload_id=shadowed.pk)
    shadowed.refresh_from_db()
    assert shadowed.score.model_version.name == BASELINE_NAME
    assert set(Score.objects.filter(upload=shadowed).values_list("model_version__name", flat=True)) == {
        BASELINE_NAME,
        candidate.name,
    }
    page = client.get(reverse("metrics:dashboard"))
    assert [row["version"].name for row in page.context["comparison"]["rows"]] == [BASELINE_NAME, candidate.name]

    # Promote: only with the confirmation ticked; the policy stays, the thresholds wait as a draft.
    url = reverse("feedback:model_action", args=[candidate.pk])
    refused = client.post(url, {"action": "promote"}, follow=True)
    assert "Tick the box to confirm the promote" in refused.content.decode()
    assert ModelVersion.objects.get(pk=candidate.pk).status == "shadow"
    response = client.post(url, {"action": "promote", "confirm": "1", "note": "looks right in shadow"})
    assert response.status_code == 302
    candidate.refresh_from_db()
    assert candidate.status == "active"
    assert ModelEvent.objects.filter(model_version=candidate, action="activated", actor=admin_user).exists()
    after = make_upload(data=photo_jpeg("rocket"))
    upload_score(upload_id=after.pk)
    after.refresh_from_db()
    assert after.score.model_version == candidate and after.policy == mine
    draft = PolicyDraft.objects.get(status="open", model_version=candidate)
    assert draft.thresholds["weapon"] == candidate.metrics["suggested_thresholds"]["weapon"]

    # Roll back: confirmation and a reason required; the model and its policy come back.
    models_page = client.get(reverse("feedback:models")).content.decode()
    assert f"Re-activate <strong>{BASELINE_NAME}</strong>" in models_page
    assert client.post(url, {"action": "rollback", "confirm": "1"}, follow=True).status_code == 200
    assert ModelVersion.objects.get(status="active") == candidate  # no reason: refused
    client.post(url, {"action": "rollback", "confirm": "1", "note": "misses knives"})
    assert ModelVersion.objects.get(status="active").name == BASELINE_NAME
    assert ModelEvent.objects.filter(action="rolled_back", actor=admin_user, note="misses knives").exists()
    assert policy_current() == mine  # the policy that routed with the baseline was never replaced
    again = make_upload(data=photo_jpeg("coffee"))
    upload_score(upload_id=again.pk)
    assert Upload.objects.get(pk=again.pk).score.model_version.name == BASELINE_NAME
    assert list(Change.objects.order_by("pk").values_list("action", flat=True)) == [
        "saved",
        "shadow",
        "promoted",
        "rolled_back",
    ]


@pytest.mark.slow
@pytest.mark.django_db
def test_a_run_that_meets_the_rule_is_promoted_but_the_policy_stays_the_admins(
    retrain_settings, tiny_dataset, moderator, admin_user
):
    """The rule's own path, on a real run: with the sample-size minimum lowered to the tiny
    dataset's six held-out images a class (and the other rules made lenient), the candidate
    promotes itself; the admin's policy still routes, its thresholds wait as a draft, everyone is told."""
    retrain_settings.VIGIL_RETRAIN_VAL_FRACTION = 0.4
    retrain_settings.VIGIL_PROMOTION_MIN_HARMFUL = retrain_settings.VIGIL_PROMOTION_MIN_SAFE = 6
    retrain_settings.VIGIL_PROMOTION_AUC_MARGIN = -1.0
    retrain_settings.VIGIL_PROMOTION_MIN_RECALL = 0.5
    label_dataset(moderator, tiny_dataset)
    queue_everything = {name: {"approve_below": 0.0, "reject_from": 1.0} for name in ("weapon", "nudity")}
    mine = policy_create(thresholds=queue_everything, reason="humans see everything", created_by=admin_user)
    ModelVersion.objects.filter(status="active").update(tiling="2x2")  # an admin's serving choice

    call_command("retrain")
    run = TrainingRun.objects.get(status="succeeded")
    assert run.candidate.tiling == "2x2"  # the candidate is served, and compared, as the active model is
    verdict = run.metrics["verdict"]
    assert (run.forced, verdict["rule"], verdict["promote"], run.promoted) == (False, "all_met", True, True)
    recall = verdict["figures"]["recall"]["candidate"]
    assert (recall["kept"], recall["of"], recall["value"]) == (6, 6, 1.0)
    assert recall["interval"] == [pytest.approx(0.6097, abs=1e-3), pytest.approx(1.0)]  # Wilson, 6 of 6
    assert run.candidate.status == "active"
    assert ModelEvent.objects.filter(model_version=run.candidate, action="auto_promoted", actor=None).exists()
    assert policy_current() == mine
    assert PolicyDraft.objects.get(status="open").model_version == run.candidate
    change = Change.objects.get(kind="model")
    assert (change.action, change.actor, change.policy) == ("auto_promoted", None, mine)
    assert "by the promotion rule" in change.summary and "all rules met" in change.summary


@pytest.mark.slow
@pytest.mark.django_db
def test_rehearsal_on_a_base_dataset_and_its_guard_follow_the_model(
    retrain_settings, tiny_dataset, moderator, admin_user, tmp_path
):
    """A run trains on the deployment's labels plus the operator's base dataset, judges the
    candidate on the base dataset's test split too, and records that set on the model; when the
    operator later points the base dataset elsewhere, the next candidate is still judged on the old
    set, and a set that is gone holds it."""
    from tests.images import labelled_folder

    base = tmp_path / "base"
    labelled_folder(base, train=4, val=2, test=6, seed=5)
    retrain_settings.VIGIL_RETRAIN_BASE_DATA = str(base)
    retrain_settings.VIGIL_RETRAIN_VAL_FRACTION = 0.4
    retrain_settings.VIGIL_PROMOTION_MIN_HARMFUL = retrain_settings.VIGIL_PROMOTION_MIN_SAFE = 6
    retrain_settings.VIGIL_PROMOTION_AUC_MARGIN = -1.0
    retrain_settings.VIGIL_PROMOTION_MIN_RECALL = 0.5
    retrain_settings.VIGIL_PROMOTION_MAX_AUC_LOSS = 1.0  # a six-image guard shows little; the path is tested here
    label_dataset(moderator, tiny_dataset)
    queue_everything = {name: {"approve_below": 0.0, "reject_from": 1.0} for name in ("weapon", "nudity")}
    policy_create(thresholds=queue_everything, reason="humans see everything", created_by=admin_user)

    call_command("retrain")
    run = TrainingRun.objects.get(status="succeeded")
    assert f"rehearsal: base dataset {base} joins training; guard split: test" in run.log
    assert run.metrics["training_data"]["train/base"] == {"safe": 4, "harmful": 4}
    assert run.metrics["training_data"]["val/base"] == {"safe": 2, "harmful": 2}
    assert run.metrics["recipe"]["name"] == "probe"  # 26 training images: a linear probe
    assert "recipe: probe" in run.log
    [guard] = run.metrics["verdict"]["figures"]["guards"]
    assert (guard["available"], guard["harmful"], guard["safe"], guard["new_misses"]) == (True, 6, 6, 0)
    assert guard["name"] == f"base dataset {base} (test)"
    assert f"guard base dataset {base} (test): AUC candidate" in run.log
    assert run.promoted, run.metrics["verdict"]["reasons"]
    sets = run.candidate.metrics["heldout"]["sets"]
    assert [(s["name"], s["split"]) for s in sets] == [("deployment", "val"), ("base dataset", "test")]

    # The operator points the base dataset at a new folder and the old one disappears.
    moved = tmp_path / "new-base"
    labelled_folder(moved, train=4, val=2, test=6, seed=6)
    retrain_settings.VIGIL_RETRAIN_BASE_DATA = str(moved)
    (base / "test" / "harmful").rename(tmp_path / "gone")
    call_command("retrain", "--force")
    second = TrainingRun.objects.filter(status="succeeded").order_by("-pk").first()
    assert second.pk != run.pk and not second.promoted
    guards = second.metrics["verdict"]["figures"]["guards"]
    assert [(g["name"], g["available"]) for g in guards] == [
        (f"base dataset {moved} (test)", True),
        (f"base dataset {base} (test)", False),
    ]
    assert any(
        reason.startswith(f"base dataset {base} (test): not scored") for reason in second.metrics["verdict"]["reasons"]
    )
