import csv
import json

import numpy as np
import pytest
import torch

from media.images import open_rgb
from moderation.ml import checkpoints
from moderation.ml.datasets import DatasetError, load_split
from moderation.ml.finetuned import FineTunedClassifier
from moderation.ml.train import main, train
from tests.conftest import tiny_train_config


def test_training_writes_checkpoint_metrics_and_summary(tiny_checkpoint):
    out = tiny_checkpoint.parent
    assert sorted(p.name for p in out.iterdir() if p.is_file()) == ["last.pt", "metrics.csv", "model.pt", "train.json"]
    assert not list(out.glob(".*.tmp"))  # atomic writes leave no temporary files
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    summary = json.loads((out / "train.json").read_text())
    assert len(rows) == summary["metrics"]["epochs_run"] >= 1
    assert {"train_loss", "val_loss", "val_accuracy", "val_roc_auc"} <= set(rows[0])
    assert summary["config"]["backbone"] == "efficientnet_lite0"
    meta = checkpoints.read(tiny_checkpoint)
    assert meta["preprocessing"]["size"] == 128
    assert meta["preprocessing"]["resize_mode"] == "squash"
    assert meta["category"] == "weapon"
    thresholds = meta["metrics"]["suggested_thresholds"]["weapon"]
    assert 0 <= thresholds["approve_below"] <= thresholds["reject_from"] <= 1


def test_the_trained_model_separates_the_classes(tiny_checkpoint, tiny_dataset):
    classifier = FineTunedClassifier(tiny_checkpoint, nudity=False)
    samples = load_split(tiny_dataset, "val")
    scores = classifier.harmful_scores([open_rgb(s.path, min_side=classifier.min_decode_side) for s in samples])
    harmful = [score for score, s in zip(scores, samples, strict=True) if s.label == 1]
    safe = [score for score, s in zip(scores, samples, strict=True) if s.label == 0]
    assert min(harmful) > max(safe)
    assert classifier.categories == ("weapon",)


def test_training_is_deterministic_for_a_seed(tiny_dataset, tiny_checkpoint, tmp_path):
    again = train(tiny_train_config(tiny_dataset, tmp_path / "again", cache_dir=str(tmp_path / "cache")))
    first = checkpoints.read(tiny_checkpoint)["state_dict"]
    second = checkpoints.read(again.checkpoint)["state_dict"]
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)
    # a second run reuses the cached backbone outputs
    assert len(list((tmp_path / "cache").glob("*.pt"))) == 3  # train plain + 1 augmented view + val


def test_unfreezing_trains_the_top_stages_too(tiny_dataset, tmp_path):
    result = train(tiny_train_config(tiny_dataset, tmp_path / "run", unfreeze=2, epochs=2))
    trained = checkpoints.read(result.checkpoint)["state_dict"]
    from moderation.ml.network import HarmfulNet

    start = HarmfulNet.build("efficientnet_lite0", unfreeze=2).state_dict()
    changed = {
        k.split(".")[0] for k in trained if trained[k].is_floating_point() and not torch.equal(trained[k], start[k])
    }
    assert changed == {"tail", "head"}


def test_dataset_without_val_split_holds_out_part_of_train(tiny_dataset, tmp_path):
    import shutil

    data = tmp_path / "only-train"
    shutil.copytree(tiny_dataset / "train", data / "train")
    result = train(tiny_train_config(data, tmp_path / "run", epochs=1))
    assert result.metrics["val_counts"] == {"safe": 2, "harmful": 2}
    assert result.metrics["train_counts"] == {"safe": 8, "harmful": 8}


def test_a_folder_that_is_not_a_dataset_is_refused_clearly(tmp_path, capsys):
    with pytest.raises(DatasetError, match="expected safe/ and harmful/"):
        train(tiny_train_config(tmp_path, tmp_path / "run"))
    assert main(["--data", str(tmp_path), "--out", str(tmp_path / "run"), "--no-progress"]) == 2
    assert "error: no labelled images" in capsys.readouterr().err


def test_command_line_entry_point(tiny_dataset, tmp_path, capsys):
    code = main(
        [
            "--data",
            str(tiny_dataset),
            "--out",
            str(tmp_path / "cli"),
            "--epochs",
            "1",
            "--aug-views",
            "0",
            "--image-size",
            "96",
            "--no-progress",
        ]
    )
    assert code == 0
    assert "wrote" in capsys.readouterr().out
    meta = checkpoints.read(tmp_path / "cli" / "model.pt")
    assert meta["preprocessing"]["size"] == 96
    assert meta["backbone"] == "efficientnet_lite2"  # the default backbone


def test_reading_something_else_as_a_checkpoint_fails_clearly(tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(checkpoints.CheckpointError, match="not a readable checkpoint"):
        checkpoints.read(tmp_path / "junk.pt")
    torch.save({"format": "something/else"}, tmp_path / "other.pt")
    with pytest.raises(checkpoints.CheckpointError, match="not a Vigil fine-tuned checkpoint"):
        checkpoints.read(tmp_path / "other.pt")


def test_an_unreadable_image_in_the_dataset_is_named_in_the_error(tiny_dataset, tmp_path):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(tiny_dataset, data, ignore=shutil.ignore_patterns("feature-cache"))
    (data / "train" / "safe" / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    with pytest.raises(DatasetError, match=r"cannot read .*broken\.jpg"):
        train(tiny_train_config(data, tmp_path / "run", epochs=1))


def test_refit_retrains_on_train_and_val_for_the_early_stopped_epoch_count(tiny_dataset, tiny_checkpoint, tmp_path):
    cache = tiny_checkpoint.parent / "feature-cache"  # same config: the backbone outputs are reused
    result = train(tiny_train_config(tiny_dataset, tmp_path / "refit", cache_dir=str(cache), refit=True))
    plain = checkpoints.read(tiny_checkpoint)
    refit = checkpoints.read(result.checkpoint)
    assert refit["metrics"]["refit_epochs"] == result.best_epoch == plain["metrics"]["best_epoch"]
    assert "refit_epochs" not in plain["metrics"]
    assert not torch.equal(refit["state_dict"]["head.weight"], plain["state_dict"]["head.weight"])
    classifier = FineTunedClassifier(result.checkpoint, nudity=False)
    samples = load_split(tiny_dataset, "val")
    scores = classifier.harmful_scores([open_rgb(s.path, min_side=classifier.min_decode_side) for s in samples])
    assert all((score >= 0.5) == bool(s.label) for score, s in zip(scores, samples, strict=True))


def test_the_tiny_run_keeps_t_at_one_and_says_why(tiny_checkpoint):
    meta = checkpoints.read(tiny_checkpoint)
    calibration = meta["metrics"]["calibration"]
    assert meta["temperature"] == calibration["temperature"] == 1.0
    assert "10 validation images (< 20)" in calibration["note"]
    assert meta["flip"] is False  # the test-time flip is off unless asked for


@pytest.fixture(scope="module")
def overlapping_run(tmp_path_factory):
    """A tiny run whose 24 val images include mislabelled ones, so its val logits overlap and a
    temperature can be fitted. No refit: model.pt is the early-stopped model."""
    from tests.images import labelled_folder

    root = tmp_path_factory.mktemp("overlap")
    labelled_folder(root / "data", train=10, val=12, seed=3)
    for index in (0, 1, 2):  # three of each class filed under the other
        (root / "data/val/harmful" / f"harmful_{index:03d}.jpg").rename(root / f"data/val/safe/moved_{index}.jpg")
        (root / "data/val/safe" / f"safe_{index:03d}.jpg").rename(root / f"data/val/harmful/moved_{index}.jpg")
    cache = str(root / "cache")
    return root / "data", train(tiny_train_config(root / "data", root / "run", cache_dir=cache)), cache


def test_training_fits_a_temperature_on_val_and_serves_with_it(overlapping_run):
    from moderation.ml.calibration import calibrated
    from moderation.ml.metrics import suggest_thresholds
    from moderation.ml.train import result_summary

    data, result, _ = overlapping_run
    calibration = result.metrics["calibration"]
    meta = checkpoints.read(result.checkpoint)
    temperature = calibration["temperature"]
    assert meta["temperature"] == temperature != 1.0
    assert calibration["note"] == ""
    assert calibration["val_nll_after"] < calibration["val_nll_before"]
    assert calibration["val_ece_after"] < calibration["val_ece_before"]
    assert result.metrics["val"]["ece"] == calibration["val_ece_after"]
    summary = result_summary(result)
    assert f"temperature {temperature:.4f}" in summary and "val ECE" in summary

    # Served: the checkpoint's scores are sigmoid(logit / T), and the suggested thresholds are
    # read off those calibrated val scores.
    served = FineTunedClassifier(result.checkpoint, nudity=False)
    raw = FineTunedClassifier(result.checkpoint, nudity=False, temperature=1.0)
    samples = load_split(data, "val")
    images = [open_rgb(s.path, min_side=served.min_decode_side) for s in samples]
    scores, raw_scores = served.harmful_scores(images), raw.harmful_scores(images)
    logits = [float(np.log(p / (1 - p))) for p in raw_scores]
    assert scores == pytest.approx(calibrated(logits, temperature).tolist(), abs=1e-5)
    labels = [s.label for s in samples]
    suggested = result.metrics["suggested_thresholds"]["weapon"]
    assert suggested == pytest.approx(suggest_thresholds(labels, scores), abs=1e-4)
    assert suggested != pytest.approx(suggest_thresholds(labels, raw_scores), abs=1e-4)


def test_the_refitted_model_keeps_the_temperature_fitted_before_the_refit(overlapping_run, tmp_path):
    data, early, cache = overlapping_run
    refitted = train(tiny_train_config(data, tmp_path / "refit", cache_dir=cache, refit=True))
    assert refitted.metrics["calibration"]["temperature"] == early.metrics["calibration"]["temperature"]
    assert checkpoints.read(refitted.checkpoint)["temperature"] == early.metrics["calibration"]["temperature"]
    assert "refitted on train+val" in refitted.metrics["calibration"]["fitted_on"]
    assert refitted.metrics["suggested_thresholds"] == early.metrics["suggested_thresholds"]


def test_no_calibrate_keeps_t_at_one(overlapping_run, tmp_path):
    data, _, cache = overlapping_run
    result = train(tiny_train_config(data, tmp_path / "raw", cache_dir=cache, calibrate=False, epochs=1))
    assert result.metrics["calibration"]["temperature"] == 1.0
    assert checkpoints.read(result.checkpoint)["temperature"] == 1.0
    assert "--no-calibrate" in result.metrics["calibration"]["note"]


def test_a_flip_run_calibrates_on_mirror_averaged_val_logits_and_serves_the_flip(overlapping_run, tmp_path):
    data, early, cache = overlapping_run
    flipped = train(tiny_train_config(data, tmp_path / "flip", cache_dir=cache, tta_flip=True))
    meta = checkpoints.read(flipped.checkpoint)
    assert meta["flip"] is True and meta["config"]["tta_flip"] is True
    # The same early-stopped network, its val logits averaged with the mirrors': another fit.
    assert flipped.best_epoch == early.best_epoch
    assert flipped.metrics["calibration"]["temperature"] != early.metrics["calibration"]["temperature"]
    assert FineTunedClassifier(flipped.checkpoint, nudity=False).flip is True
