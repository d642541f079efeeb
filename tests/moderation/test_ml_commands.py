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


def train_tiny(data, out, **options) -> None:
    """``manage.py train`` with the fastest real backbone at 96 px (seconds on a CPU)."""
    settings = {"backbone": "efficientnet_lite0", "epochs": 1, "aug_views": 0, "image_size": 96, "progress": False}
    call_command("train", data=str(data), out=str(out), **{**settings, **options})


def test_train_command_registers_and_activates(tiny_dataset, tmp_path, capsys):
    train_tiny(tiny_dataset, tmp_path / "run", activate=True, name="tiny-cmd")
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
    assert "(the val split): 10 images" in out
    for heading in ("precision", "recall", "f1-score", "support", "accuracy", "macro avg", "weighted avg"):
        assert heading in out
    assert "confusion matrix" in out and "ROC AUC 1.0000" in out
    assert roc.read_bytes().startswith(b"\x89PNG")
    import json

    figures = json.loads((tmp_path / "eval.json").read_text())
    assert figures["confusion"] == [[5, 0], [0, 5]]
    assert figures["report"]["harmful"]["support"] == 5
    # Calibration: the tiny run is too small to fit a temperature, and says it serves without one.
    assert "served with calibration temperature 1 (uncalibrated), test-time flip off" in out
    assert f"ECE {figures['ece']:.4f} (expected calibration error, 15 equal-width bins" in out
    assert figures["serving"] == {"temperature": 1.0, "flip": False}
    assert figures["ms_per_image"] > 0


@pytest.mark.slow
def test_evaluate_serves_a_checkpoint_with_another_temperature_or_the_flip(tiny_checkpoint, tiny_dataset, tmp_path):
    import json

    def evaluate(name, **overrides):
        path = tmp_path / f"{name}.json"
        call_command(
            "evaluate",
            data=str(tiny_dataset),
            checkpoint=str(tiny_checkpoint),
            category="weapon",
            json_path=str(path),
            verbosity=0,
            **overrides,
        )
        return json.loads(path.read_text())

    plain, hot, flipped = evaluate("plain"), evaluate("hot", temperature=4.0), evaluate("flip", flip=True)
    assert hot["serving"] == {"temperature": 4.0, "flip": False}
    assert flipped["serving"] == {"temperature": 1.0, "flip": True}
    assert hot["roc_auc"] == plain["roc_auc"] and hot["ece"] != plain["ece"]  # the ranking is the same
    with pytest.raises(CommandError, match="apply to a --checkpoint only"):
        call_command("evaluate", data=str(tiny_dataset), temperature=2.0, verbosity=0)
    with pytest.raises(CommandError, match="must be positive"):
        call_command("evaluate", data=str(tiny_dataset), checkpoint=str(tiny_checkpoint), temperature=0.0)


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


@pytest.fixture
def split_by_file(tiny_dataset, tmp_path):
    """The tiny dataset as realbench ships: safe/ and harmful/ at the root, a SPLITS.csv beside."""
    import shutil

    root = tmp_path / "flat"
    lines = ["file,split"]
    for split in ("train", "val"):
        for label in ("safe", "harmful"):
            (root / label).mkdir(parents=True, exist_ok=True)
            for path in sorted((tiny_dataset / split / label).iterdir()):
                name = f"{split}-{path.name}"
                shutil.copy(path, root / label / name)
                lines.append(f"{label}/{name},{'test' if split == 'val' else 'train'}")
    (root / "SPLITS.csv").write_text("\n".join(lines) + "\n")
    return root


@pytest.mark.slow
def test_train_reads_a_splits_file_refits_by_default_and_says_what_its_figures_describe(
    split_by_file, tmp_path, capsys
):
    train_tiny(split_by_file, tmp_path / "run", epochs=2)
    out = capsys.readouterr().out
    assert "on val: val accuracy" in out and "refitted on train+val for" in out
    assert "describe the early-stopped model before the refit" in out
    assert (tmp_path / "run" / "model.pt").is_file()


def test_a_failed_train_leaves_no_output_folder(tmp_path):
    with pytest.raises(CommandError, match="no labelled images"):
        call_command("train", data=str(tmp_path), out=str(tmp_path / "run"), progress=False)
    assert not (tmp_path / "run").exists()
    with pytest.raises(CommandError, match=r"the splits file .* does not exist"):
        call_command("train", data=str(tmp_path), out=str(tmp_path / "run"), splits=str(tmp_path / "nope.csv"))
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_evaluate_takes_the_test_split_of_a_splits_file_and_writes_under_var(
    tiny_checkpoint, split_by_file, settings, tmp_path, capsys
):
    settings.VAR_DIR = tmp_path / "var"
    call_command("evaluate", data=str(split_by_file), checkpoint=str(tiny_checkpoint), verbosity=0)
    out = capsys.readouterr().out
    assert "(the test split): 10 images" in out  # not all 30
    [roc] = (tmp_path / "var" / "evaluations").glob("roc-*.png")
    assert roc.read_bytes().startswith(b"\x89PNG")


@pytest.mark.slow
def test_classify_says_which_thresholds_route_and_takes_another_policy_or_the_suggested(
    tiny_checkpoint, tmp_path, admin_user, capsys
):
    from moderation.services.policies import policy_create, policy_current

    (tmp_path / "rocket.jpg").write_bytes(encode(photo("rocket"), "JPEG"))
    (tmp_path / "cat.jpg").write_bytes(encode(photo("chelsea"), "JPEG"))
    v1 = policy_current()
    strict = {name: {"approve_below": 0.0, "reject_from": 1.0} for name in v1.thresholds}  # everything queued
    policy_create(thresholds=strict, reason="all to humans", created_by=admin_user)

    call_command("classify", str(tmp_path), checkpoint=str(tiny_checkpoint), batch_size=1)
    out = capsys.readouterr().out
    assert "routes by policy v2 (in force)" in out
    assert all(line.endswith("queued  ") or "  queued  " in line for line in out.splitlines()[2:4])

    call_command("classify", str(tmp_path), checkpoint=str(tiny_checkpoint), policy=v1.version)
    assert f"routes by policy v{v1.version}\n" in capsys.readouterr().out

    call_command("classify", str(tmp_path), checkpoint=str(tiny_checkpoint), suggested=True)
    out = capsys.readouterr().out
    assert "suggested thresholds for weapon, the rest by policy v2 (in force)" in out
    assert "  queued  " in out or "  approved  " in out or "  rejected  " in out
    with pytest.raises(CommandError, match="no threshold policy v99"):
        call_command("classify", str(tmp_path), checkpoint=str(tiny_checkpoint), policy=99)
