"""The per-version tiling switch: set at registration (command or checkpoint), changed by admins
with a record, and applied by the worker's scoring path from its next task."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from PIL import Image, ImageDraw

from moderation.classifiers import classifier_for, unload_all
from moderation.ml.finetuned import FineTunedClassifier
from moderation.models import Change, ModelEvent, ModelVersion
from moderation.services.model_versions import (
    RegistryError,
    model_version_activate,
    model_version_ensure_active,
    model_version_register,
    model_version_set_tiling,
)
from moderation.services.scoring import upload_score
from tests.factories import make_upload
from tests.images import encode

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def model_dir(settings, tmp_path):
    settings.VIGIL_MODEL_DIR = tmp_path / "models"
    unload_all()
    yield settings.VIGIL_MODEL_DIR
    unload_all()


def test_registration_refuses_an_unknown_tiling_and_defaults_to_none(tiny_checkpoint):
    with pytest.raises(RegistryError, match="tiling must be one of none, 2x2, 3x3"):
        model_version_register(checkpoint=tiny_checkpoint, name="tiny-v1", tiling="5x5")
    assert not ModelVersion.objects.exists()
    version = model_version_register(checkpoint=tiny_checkpoint, name="tiny-v1")
    assert ModelVersion.objects.get(pk=version.pk).tiling == "none"  # the tiny checkpoint was trained without


def test_register_model_and_list_models_show_the_tiling(tiny_checkpoint, capsys):
    with pytest.raises(CommandError, match="invalid choice: '4x4'"):
        call_command("register_model", str(tiny_checkpoint), "--tiling=4x4")
    call_command("register_model", str(tiny_checkpoint), "--tiling=2x2", name="tiny-v1")
    call_command("list_models")
    out = capsys.readouterr().out
    assert "registered tiny-v1 (candidate), tiling 2x2" in out
    assert any(line.startswith("tiny-v1") and " 2x2 " in line for line in out.splitlines())


def test_a_checkpoint_trained_for_tiling_registers_with_it(tiny_dataset, tmp_path, capsys):
    call_command(
        "train",
        data=str(tiny_dataset),
        out=str(tmp_path / "run"),
        backbone="efficientnet_lite0",
        epochs=1,
        aug_views=0,
        image_size=96,
        progress=False,
        tiling="2x2",
        register=True,
        name="tiled",
    )
    assert "registered model version tiled (candidate), tiling 2x2" in capsys.readouterr().out
    assert ModelVersion.objects.get(name="tiled").tiling == "2x2"


def test_changing_the_tiling_is_recorded_and_announced_only_when_the_version_scores(tiny_checkpoint, admin_user):
    model_version_ensure_active()
    version = model_version_register(checkpoint=tiny_checkpoint, name="tiny-v1")
    model_version_set_tiling(model_version=version, tiling="2x2", user=admin_user, note="try it")
    event = ModelEvent.objects.get(model_version=version, action=ModelEvent.Action.TILING)
    assert (event.actor, event.note) == (admin_user, "whole frame only → whole frame + 2x2 tiles: try it")
    assert not Change.objects.filter(action=Change.Action.TILING).exists()  # a candidate routes nothing

    model_version_activate(model_version=version, user=admin_user)
    model_version_set_tiling(model_version=version, tiling="3x3", user=admin_user)
    change = Change.objects.get(action=Change.Action.TILING)
    assert change.model_version == version and change.actor == admin_user
    assert "now scores whole frame + 3x3 tiles instead of whole frame + 2x2 tiles" in change.summary
    # setting what is already set records nothing
    model_version_set_tiling(model_version=version, tiling="3x3", user=admin_user)
    assert ModelEvent.objects.filter(action=ModelEvent.Action.TILING).count() == 2
    with pytest.raises(RegistryError, match="tiling must be one of"):
        model_version_set_tiling(model_version=version, tiling="2x3")
    assert ModelVersion.objects.get(pk=version.pk).tiling == "3x3"


def test_admins_switch_the_tiling_on_the_model_versions_page(client, admin_user, tiny_checkpoint):
    active = model_version_ensure_active()
    candidate = model_version_register(checkpoint=tiny_checkpoint, name="tiny-v1")
    client.force_login(admin_user)
    page = client.get(reverse("feedback:models")).content.decode()
    assert 'aria-label="Tiling of tiny-v1"' in page and "Whole frame + 3x3 tiles" in page
    url = reverse("feedback:model_action", args=[candidate.pk])
    response = client.post(url, {"action": "tiling", "tiling": "2x2"}, follow=True)
    assert "tiny-v1 scores whole frame + 2x2 tiles." in response.content.decode()
    assert ModelVersion.objects.get(pk=candidate.pk).tiling == "2x2"
    # the active version scores uploads: a change needs the box ticked
    url = reverse("feedback:model_action", args=[active.pk])
    response = client.post(url, {"action": "tiling", "tiling": "3x3"}, follow=True)
    assert "Tick the box to confirm" in response.content.decode()
    assert ModelVersion.objects.get(pk=active.pk).tiling == "none"
    client.post(url, {"action": "tiling", "tiling": "3x3", "confirm": "1"})
    assert ModelVersion.objects.get(pk=active.pk).tiling == "3x3"
    assert Change.objects.filter(action=Change.Action.TILING, model_version=active).exists()
    response = client.post(url, {"action": "tiling", "tiling": "9x9"}, follow=True)
    assert "Select a valid choice" in response.content.decode()


def wide_frame() -> bytes:
    """A 416x234 frame (a CCTV shot's size) with a small bright object in a corner."""
    image = Image.new("RGB", (416, 234), (60, 70, 60))
    ImageDraw.Draw(image).rectangle((350, 170, 372, 184), fill=(240, 240, 235))
    return encode(image)


@pytest.mark.slow
def test_the_worker_scores_with_the_versions_tiling_from_its_next_task(tiny_checkpoint, uploader, monkeypatch):
    views: list[int] = []
    network = FineTunedClassifier._network_outputs

    def counting(self, images):
        views.append(len(images))
        return network(self, images)

    monkeypatch.setattr(FineTunedClassifier, "_network_outputs", counting)
    version = model_version_register(checkpoint=tiny_checkpoint, name="tiny-v1", tiling="2x2")
    model_version_activate(model_version=version)

    first = make_upload(uploader, wide_frame())
    upload_score(upload_id=first.pk)
    assert views == [5]  # the frame and its 4 tiles, in one batch
    assert classifier_for(version).serving == "onnx"
    tiled_score = first.scores.get().category_scores["weapon"]

    model_version_set_tiling(model_version=version, tiling="none")  # an admin switches it off
    second = make_upload(uploader, wide_frame())
    upload_score(upload_id=second.pk)
    assert views == [5, 1]
    whole_score = second.scores.get().category_scores["weapon"]
    assert tiled_score >= whole_score - 1e-6  # the tiled score is a maximum that includes the whole frame

    model_version_set_tiling(model_version=version, tiling="3x3")
    third = make_upload(uploader, wide_frame())
    upload_score(upload_id=third.pk)
    assert views == [5, 1, 10]
