"""The model registry: register a fine-tuned checkpoint, activate it, roll back; scoring follows."""

import shutil

import pytest

from moderation.classifiers import ModelIntegrityError, classifier_for, unload_all
from moderation.ml.files import file_sha256
from moderation.models import Change, ModelEvent, ModelVersion, PolicyDraft
from moderation.services.model_versions import (
    BASELINE_NAME,
    RegistryError,
    model_version_activate,
    model_version_ensure_active,
    model_version_register,
    model_version_rollback,
    model_version_rollback_target,
)
from moderation.services.policies import policy_create, policy_current
from moderation.services.scoring import upload_score
from tests.factories import make_upload
from tests.images import photo_jpeg

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def model_dir(settings, tmp_path):
    settings.VIGIL_MODEL_DIR = tmp_path / "models"
    return settings.VIGIL_MODEL_DIR


def test_register_copies_the_weights_under_their_digest_as_a_candidate(tiny_checkpoint, model_dir):
    version = model_version_register(checkpoint=tiny_checkpoint, name="tiny-v1", notes="test run")
    sha = file_sha256(tiny_checkpoint)
    assert version.status == ModelVersion.Status.CANDIDATE
    assert version.architecture == "harmfulnet"
    assert version.weights == str(model_dir / f"{sha}.pt")
    assert file_sha256(version.weights) == version.weights_sha256 == sha
    assert version.categories == ["weapon", "nudity"]
    assert version.preprocessing["size"] == 128
    assert version.config["backbone"] == "efficientnet_lite0"
    assert "val" in version.metrics and "suggested_thresholds" in version.metrics
    assert not list(model_dir.glob(".*.tmp"))  # the copy is atomic: no temporary file left


def test_registering_the_same_weights_or_name_twice_is_refused(tiny_checkpoint, tmp_path):
    model_version_register(checkpoint=tiny_checkpoint, name="tiny-v1")
    with pytest.raises(RegistryError, match="already registered as 'tiny-v1'"):
        model_version_register(checkpoint=tiny_checkpoint, name="tiny-v2")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"junk")
    with pytest.raises(RegistryError, match="not a readable checkpoint"):
        model_version_register(checkpoint=junk)
    assert ModelVersion.objects.filter(architecture="harmfulnet").count() == 1


def test_activate_then_roll_back(tiny_checkpoint, admin_user):
    baseline = model_version_ensure_active()
    candidate = model_version_register(checkpoint=tiny_checkpoint, name="tiny-v1")
    model_version_activate(model_version=candidate)
    baseline.refresh_from_db()
    assert (candidate.status, baseline.status) == ("active", "retired")
    assert ModelVersion.objects.filter(status="active").count() == 1
    restored = model_version_rollback(user=admin_user, reason="tiny model misses knives")
    candidate.refresh_from_db()
    assert (restored.name, restored.status, candidate.status) == (BASELINE_NAME, "active", "retired")
    event = ModelEvent.objects.get(action="rolled_back")
    assert (event.model_version, event.actor, event.note) == (baseline, admin_user, "tiny model misses knives")
    assert list(Change.objects.order_by("pk").values_list("action", flat=True)) == ["promoted", "rolled_back"]


def test_rollback_without_history_or_reason_is_refused(tiny_checkpoint):
    model_version_ensure_active()
    with pytest.raises(RegistryError, match="no previously active"):
        model_version_rollback(user=None, reason="why not")
    assert model_version_rollback_target() is None
    model_version_activate(model_version=model_version_register(checkpoint=tiny_checkpoint, name="tiny-v1"))
    with pytest.raises(RegistryError, match="Say why"):
        model_version_rollback(user=None, reason="  ")
    assert ModelVersion.objects.get(status="active").name == "tiny-v1"


def test_activation_never_changes_the_policy_and_proposes_a_draft(tiny_checkpoint, admin_user):
    model_version_ensure_active()
    mine = policy_create(
        thresholds={
            "weapon": {"approve_below": 0.2, "reject_from": 0.4},
            "nudity": {"approve_below": 0.2, "reject_from": 0.8},
        },
        reason="hand-tuned",
        created_by=admin_user,
    )
    candidate = model_version_register(checkpoint=tiny_checkpoint, name="tiny-v1")
    model_version_activate(model_version=candidate, user=admin_user)
    assert policy_current() == mine  # the admin's policy still routes
    draft = PolicyDraft.objects.get(status="open")
    assert draft.model_version == candidate
    assert draft.thresholds["weapon"] == candidate.metrics["suggested_thresholds"]["weapon"]
    assert draft.thresholds["nudity"] == mine.thresholds["nudity"]  # other categories as in force
    change = Change.objects.get(action="promoted")
    assert (change.actor, change.model_version, change.policy) == (admin_user, candidate, mine)
    assert "draft" in change.summary


def test_rollback_restores_the_model_and_the_policy_in_force_with_it(tiny_checkpoint, admin_user):
    """Reproduction 2: a rollback used to write the cold-start numbers with a "suggested on
    validation data" reason, and left the admin's pre-promotion policy behind."""
    model_version_ensure_active()
    theirs = {
        "weapon": {"approve_below": 0.2, "reject_from": 0.4},
        "nudity": {"approve_below": 0.2, "reject_from": 0.8},
    }
    before = policy_create(thresholds=theirs, reason="hand-tuned for the baseline", created_by=admin_user)
    candidate = model_version_register(checkpoint=tiny_checkpoint, name="tiny-v1")
    model_version_activate(model_version=candidate, user=admin_user)
    tuned = {**theirs, "weapon": {"approve_below": 0.05, "reject_from": 0.97}}
    policy_create(thresholds=tuned, reason="tuned for tiny-v1", created_by=admin_user)

    model_version_rollback(user=admin_user, reason="tiny-v1 misses knives")
    restored = policy_current()
    assert ModelVersion.objects.get(status="active").name == BASELINE_NAME
    assert restored.thresholds == before.thresholds and restored.version == before.version + 2
    assert restored.created_by == admin_user
    assert f"restores the thresholds of policy v{before.version}" in restored.reason
    assert "tiny-v1 misses knives" in restored.reason and "suggested" not in restored.reason
    assert not PolicyDraft.objects.filter(status="open").exists()  # tiny-v1's draft went with it
    assert list(Change.objects.order_by("pk").values_list("action", flat=True)) == [
        "saved",
        "promoted",
        "saved",
        "rolled_back",
        "restored",
    ]
    # Nothing further back to roll back to than the baseline's predecessor: none.
    assert model_version_rollback_target().model_version == candidate


@pytest.mark.slow
def test_new_uploads_are_scored_by_the_newly_active_model(tiny_checkpoint, uploader):
    first = make_upload(uploader, photo_jpeg("rocket"))
    upload_score(upload_id=first.pk)
    candidate = model_version_register(checkpoint=tiny_checkpoint, name="tiny-v1")
    model_version_activate(model_version=candidate)
    second = make_upload(uploader, photo_jpeg("rocket"))
    upload_score(upload_id=second.pk)
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.score.model_version.name == BASELINE_NAME
    assert second.score.model_version == candidate
    assert set(second.score.category_scores) == {"weapon", "nudity"}
    # the tiny model learnt rocket-and-motorcycle crops as "harmful"
    assert second.score.category_scores["weapon"] > 0.5


def test_weights_changed_after_registration_are_refused(tiny_checkpoint, tmp_path):
    copy = tmp_path / "model.pt"
    shutil.copyfile(tiny_checkpoint, copy)
    version = model_version_register(checkpoint=copy, name="tiny-v1")
    with open(version.weights, "ab") as handle:
        handle.write(b"tampered")
    unload_all()
    with pytest.raises(ModelIntegrityError, match="changed since registration"):
        classifier_for(version)


@pytest.mark.slow
def test_registration_exports_for_torch_free_serving_and_workers_fall_back_to_torch(tiny_checkpoint, model_dir):
    unload_all()
    version = model_version_register(checkpoint=tiny_checkpoint, name="tiny-onnx")
    onnx_file = model_dir / "serving" / f"{version.weights_sha256}.onnx"
    assert onnx_file.is_file() and onnx_file.with_suffix(".json").is_file()
    served = classifier_for(version)
    assert served.serving == "onnx"
    onnx_scores = served.predict([photo_jpeg_image("coffee")])

    onnx_file.unlink()  # an install from before exports existed: torch serves it
    unload_all()
    fallback = classifier_for(version)
    assert fallback.serving == "torch"
    assert fallback.predict([photo_jpeg_image("coffee")])[0] == pytest.approx(onnx_scores[0], abs=0.02)
    unload_all()


def photo_jpeg_image(name: str):
    import io

    from PIL import Image

    return Image.open(io.BytesIO(photo_jpeg(name))).convert("RGB")
