"""The whole feedback loop with real images: decisions → export → retrain → candidate with
metrics → promotion rule → shadow → promote → new uploads scored by the new model → roll back."""

from pathlib import Path

import pytest
from django.core.management import call_command
from django.urls import reverse

from feedback.models import TrainingRun
from feedback.services.promotion import promotion_verdict
from moderation.models import ModelEvent, ModelVersion, Score, Upload
from moderation.services.model_versions import BASELINE_NAME
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
    settings.VIGIL_PROMOTION_AUTO = False  # the rule's verdict is recorded; an admin promotes
    return settings


def label_dataset(moderator, root: Path) -> int:
    count = 0
    for path in sorted(root.glob("*/*/*.jpg")):
        round_ = make_round(make_upload(data=path.read_bytes()), score=0.3)
        round_claim(round_id=round_.pk, moderator=moderator)
        decision_create(round_id=round_.pk, moderator=moderator, label=path.parent.name)
        count += 1
    return count


@pytest.mark.slow
@pytest.mark.django_db
def test_the_feedback_loop_end_to_end(retrain_settings, tiny_dataset, moderator, admin_user, client):
    labelled = label_dataset(moderator, tiny_dataset)
    assert labelled == 30

    # Too few new labels: the scheduled run skips itself.
    retrain_settings.VIGIL_RETRAIN_MIN_LABELS = 1000
    call_command("retrain")
    assert TrainingRun.objects.get().status == "skipped"
    retrain_settings.VIGIL_RETRAIN_MIN_LABELS = 20

    call_command("retrain")
    run = TrainingRun.objects.filter(status="succeeded").get()
    assert (run.labels, run.new_labels, run.progress) == (30, 30, 1.0)
    assert "exported 30 labelled images" in run.log and "trained in" in run.log
    candidate = run.candidate
    assert candidate.status == "candidate" and candidate.architecture == "harmfulnet"
    heldout = candidate.metrics["heldout"]
    assert heldout["candidate"]["images"] == heldout["active"]["images"] == 2 * round(0.3 * 15)  # same held-out images
    assert heldout["active_name"] == BASELINE_NAME
    assert heldout["candidate"]["roc_auc"] > 0.9  # rockets and motorbikes vs cats and coffee
    verdict = promotion_verdict(candidate=heldout["candidate"], active=heldout["active"])
    assert heldout["verdict"] == {"promote": verdict.promote, "reasons": verdict.reasons}
    assert ModelEvent.objects.filter(model_version=candidate, action="held").exists()
    assert not run.promoted

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

    # Promote with one action: recorded, thresholds suggested for it applied, next upload uses it.
    response = client.post(
        reverse("feedback:model_action", args=[candidate.pk]), {"action": "promote", "apply_thresholds": "on"}
    )
    assert response.status_code == 302
    candidate.refresh_from_db()
    assert candidate.status == "active"
    assert ModelEvent.objects.filter(model_version=candidate, action="activated", actor=admin_user).exists()
    after = make_upload(data=photo_jpeg("rocket"))
    upload_score(upload_id=after.pk)
    after.refresh_from_db()
    assert after.score.model_version == candidate
    assert after.policy.thresholds["weapon"] == candidate.metrics["suggested_thresholds"]["weapon"]

    # Roll back with one action.
    client.post(reverse("feedback:model_action", args=[candidate.pk]), {"action": "rollback"})
    assert ModelVersion.objects.get(status="active").name == BASELINE_NAME
    assert ModelEvent.objects.filter(action="rolled_back", actor=admin_user).exists()
    again = make_upload(data=photo_jpeg("coffee"))
    upload_score(upload_id=again.pk)
    assert Upload.objects.get(pk=again.pk).score.model_version.name == BASELINE_NAME
