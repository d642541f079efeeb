"""The machine-learning commands: train (and register), evaluate, classify, the registry commands."""

import csv

import pytest
from django.core.management import CommandError, call_command

from moderation.models import ModelEvent, ModelVersion
from moderation.services.model_versions import BASELINE_NAME, model_version_ensure_active
from tests.images import animated, encode, photo, photo_frames
from tests.videos import clip_with_insert

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def model_dir(settings, tmp_path):
    settings.VIGIL_MODEL_DIR = tmp_path / "models"


def test_train_command_registers_and_activates(tiny_dataset, tmp_path, capsys):
    call_command(
        "train",
        data=str(tiny_dataset),
        out=str(tmp_path / "run"),
        backbone="efficientnet_lite0",
        epochs=1,
        aug_views=0,
        image_size=96,
        progress=False,
        activate=True,
        name="tiny-cmd",
    )
    out = capsys.readouterr().out
    assert "val accuracy" in out and "activated tiny-cmd" in out
    assert ModelVersion.objects.get(status="active").name == "tiny-cmd"


def test_train_command_reports_a_bad_dataset_as_a_command_error(tmp_path):
    with pytest.raises(CommandError, match="no labelled images"):
        call_command("train", data=str(tmp_path), out=str(tmp_path / "run"), progress=False)


def test_register_activate_list_and_roll_back(tiny_checkpoint, capsys):
    model_version_ensure_active()
    call_command("register_model", str(tiny_checkpoint), name="tiny-v1")
    call_command("activate_model", "tiny-v1")
    call_command("list_models")
    listing = capsys.readouterr().out
    assert "registered tiny-v1 (candidate)" in listing and "active model: tiny-v1" in listing
    assert any(line.startswith("tiny-v1") and " active " in line for line in listing.splitlines())
    with pytest.raises(CommandError, match="--reason"):
        call_command("rollback_model")
    call_command("rollback_model", reason="tiny-v1 was a test")
    out = capsys.readouterr().out
    assert f"active model: {BASELINE_NAME}" in out and "policy v1 in force" in out
    assert ModelEvent.objects.filter(action="rolled_back", note="tiny-v1 was a test").exists()
    with pytest.raises(CommandError, match="no model version named 'nope'"):
        call_command("activate_model", "nope")


@pytest.mark.slow
def test_evaluate_prints_the_papers_table_and_writes_a_roc_curve(tiny_checkpoint, tiny_dataset, tmp_path, capsys):
    roc = tmp_path / "roc.png"
    call_command(
        "evaluate",
        data=str(tiny_dataset),
        checkpoint=str(tiny_checkpoint),
        roc=str(roc),
        json_path=str(tmp_path / "eval.json"),
        verbosity=0,
    )
    out = capsys.readouterr().out
    assert "(val split): 10 images" in out
    for heading in ("precision", "recall", "f1-score", "support", "accuracy", "macro avg", "weighted avg"):
        assert heading in out
    assert "confusion matrix" in out and "ROC AUC 1.0000" in out
    assert roc.read_bytes().startswith(b"\x89PNG")
    import json

    figures = json.loads((tmp_path / "eval.json").read_text())
    assert figures["confusion"] == [[5, 0], [0, 5]]
    assert figures["report"]["harmful"]["support"] == 5


@pytest.mark.slow
def test_classify_walks_folders_and_writes_csv(tiny_checkpoint, tmp_path, capsys):
    folder = tmp_path / "in"
    (folder / "nested").mkdir(parents=True)
    (folder / "nested" / "rocket.jpg").write_bytes(encode(photo("rocket"), "JPEG"))
    (folder / "cat.png").write_bytes(encode(photo("chelsea"), "PNG"))
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (folder / "notes.txt").write_text("ignored")
    # An animation whose later frame is the rocket: one row, the worst frame's scores.
    (folder / "cats-then-rocket.gif").write_bytes(animated(photo_frames(["chelsea", "coffee", "rocket"]), "GIF"))
    # A video: one row, its worst sampled frame's time (the rocket from 2 s to 4 s).
    (folder / "cat-then-rocket.mp4").write_bytes(
        clip_with_insert(seconds=5, insert_at=2, safe="chelsea", harmful="rocket", size=(160, 112))
    )
    out_csv = tmp_path / "out.csv"
    call_command("classify", str(folder), checkpoint=str(tiny_checkpoint), csv_path=str(out_csv))
    rows = {row["file"].rsplit("/", 1)[-1]: row for row in csv.DictReader(out_csv.open())}
    assert set(rows) == {"rocket.jpg", "cat.png", "broken.jpg", "cats-then-rocket.gif", "cat-then-rocket.mp4"}
    video = rows["cat-then-rocket.mp4"]
    assert video["prediction"] == "harmful" and 2.0 <= float(video["worst_time"]) < 4.0
    assert rows["rocket.jpg"]["prediction"] == "harmful"
    assert rows["cat.png"]["prediction"] == "safe"
    assert (rows["cats-then-rocket.gif"]["prediction"], rows["cats-then-rocket.gif"]["worst_frame"]) == ("harmful", "2")
    assert (rows["rocket.jpg"]["worst_frame"], rows["cat.png"]["worst_frame"]) == ("", "")
    assert (rows["cats-then-rocket.gif"]["worst_time"], rows["rocket.jpg"]["worst_time"]) == ("", "")
    assert rows["broken.jpg"]["prediction"] == "error"
    for name in ("rocket.jpg", "cat.png"):
        row = rows[name]
        assert float(row["latency_ms"]) > 0
        assert float(row["safe_score"]) + float(row["harmful_score"]) == pytest.approx(1, abs=1e-3)
        assert set(row) >= {"weapon", "nudity", "route"}
        assert row["route"] in {"approved", "queued", "rejected"}
    assert "rocket.jpg  harmful" in capsys.readouterr().out


def test_classify_refuses_missing_paths(tmp_path):
    with pytest.raises(CommandError, match="does not exist"):
        call_command("classify", str(tmp_path / "missing.jpg"))
