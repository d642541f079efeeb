"""The generalisation bench's folds, draws and label selection, on a small generated manifest
(no realbench here: the bench itself runs on it)."""

import csv

import pytest
import torch
from torch import nn

from bench.generalisation import (
    Photo,
    eligible_sources,
    held_label_count,
    loso_fold,
    most_uncertain,
    probe_cutoff,
    read_rows,
    split_labelled,
    stratified_draw,
    with_source_labels,
)
from moderation.ml.network import HarmfulNet
from moderation.ml.train import TrainConfig, fit_cached, predict_cached


def manifest(tmp_path):
    """Three sources: "guns" all harmful (60), "phones" all safe (50), "mixed" both (30 + 30), and a
    tiny "few" source (10 safe) below the 40-photo bar. Splits cycle train, train, train, val, test."""
    plan = [("guns", "harmful", 60), ("phones", "safe", 50), ("mixed", "harmful", 30), ("mixed", "safe", 30)]
    plan.append(("few", "safe", 10))
    rows, n = [], 0
    for source, label, count in plan:
        for _ in range(count):
            rows.append({"file": f"{label}/{n:04d}.jpg", "label": label, "category": "x", "source_repo": source})
            n += 1
    with (tmp_path / "MANIFEST.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["file", "label", "category", "source_repo"])
        writer.writeheader()
        writer.writerows(rows)
    cycle = ["train", "train", "train", "val", "test"]
    with (tmp_path / "SPLITS.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "split"])
        writer.writerows([row["file"], cycle[i % 5]] for i, row in enumerate(rows))
    return read_rows(tmp_path)


@pytest.fixture
def rows(tmp_path):
    return manifest(tmp_path)


def test_rows_and_eligible_sources(rows):
    assert len(rows) == 180
    assert rows[0] == Photo("harmful/0000.jpg", 1, "guns", "train", "x")
    assert eligible_sources(rows) == ["guns", "mixed", "phones"]  # "few" has 10 photos


def test_a_fold_never_trains_on_its_source_nor_on_any_test_photo(rows):
    fold = loso_fold(rows, "guns")
    assert all(rows[i].source != "guns" for i in fold.train + fold.val)
    assert {rows[i].split for i in fold.train} == {"train"} and {rows[i].split for i in fold.val} == {"val"}
    assert len(fold.held) == 60 and all(rows[i].source == "guns" for i in fold.held)
    # guns are all harmful: the safe class is completed with the other sources' safe test photos
    assert fold.completion and all(
        rows[i].label == 0 and rows[i].split == "test" and rows[i].source != "guns" for i in fold.completion
    )
    assert set(fold.completion) == {i for i, r in enumerate(rows) if r.label == 0 and r.split == "test"}
    assert set(fold.test) == set(fold.held) | set(fold.completion)
    assert not set(fold.test) & set(fold.train + fold.val)
    assert set(fold.others_test) == {i for i, r in enumerate(rows) if r.source != "guns" and r.split == "test"}


def test_a_source_with_both_classes_is_tested_alone(rows):
    fold = loso_fold(rows, "mixed")
    assert fold.completion == []
    assert sorted(fold.test) == sorted(fold.held)


def test_labels_of_the_held_out_source_join_training_and_leave_the_test_set(rows):
    fold = loso_fold(rows, "mixed")
    after = with_source_labels(rows, fold, 24, seed=3)
    assert len(after.labelled) == 24 and sum(rows[i].label for i in after.labelled) == 12  # stratified
    assert set(after.labelled) <= set(fold.held)
    assert set(after.labelled) == (set(after.train) | set(after.val)) - set(fold.train) - set(fold.val)
    assert not set(after.labelled) & set(after.test)
    assert len(after.held) == 36
    assert after.others_test == fold.others_test
    # 18 of each class left of "mixed" is under 20: both are completed from the other sources' test split
    assert {rows[i].label for i in after.completion} == {0, 1}
    assert all(rows[i].source != "mixed" and rows[i].split == "test" for i in after.completion)
    assert with_source_labels(rows, fold, 24, seed=3).labelled == after.labelled  # seeded
    assert with_source_labels(rows, fold, 24, seed=4).labelled != after.labelled


def test_held_label_count_leaves_half_of_a_small_source():
    assert held_label_count(699) == 100
    assert held_label_count(157) == 78
    assert held_label_count(48) == 24


def test_stratified_draw_and_split():
    labels = [1] * 30 + [0] * 70
    drawn = stratified_draw(list(range(100)), labels, 25, seed=1)
    assert len(drawn) == len(set(drawn)) == 25
    assert sum(labels[i] for i in drawn) in (7, 8)
    train, val = split_labelled(drawn, labels, seed=1)
    assert sorted(train + val) == drawn
    assert {labels[i] for i in val} == {0, 1} and len(val) == 5


def test_most_uncertain_picks_the_scores_nearest_the_boundary():
    scores = {10: 0.02, 11: 0.49, 12: 0.97, 13: 0.6, 14: 0.45, 15: 0.51}
    assert most_uncertain(scores, 3) == [11, 14, 15]
    assert most_uncertain(scores, 1) == [11]  # 0.49 and 0.51 tie: the lower index wins
    assert most_uncertain(scores, 10) == sorted(scores)


def test_probe_cutoff():
    curve = {
        25: {"probe": 0.90, "fine-tune": 0.85},
        50: {"probe": 0.93, "fine-tune": 0.92},
        100: {"probe": 0.95, "fine-tune": 0.96},
        200: {"probe": 0.96, "fine-tune": 0.98},
    }
    assert probe_cutoff(curve) == 100
    curve[50]["fine-tune"] = 0.94  # fine-tuning wins from 50 on
    assert probe_cutoff(curve) == 50
    curve[200]["fine-tune"] = 0.95  # loses at the largest size: never reliably ahead
    assert probe_cutoff(curve) is None


def test_fit_cached_trains_a_head_on_cached_features():
    """train()'s epoch loop, on cached pooled vectors: it learns a separable problem and reports its epochs."""
    torch.manual_seed(0)
    net = HarmfulNet([nn.Identity()], feature_dim=4, unfreeze=0)
    labels = torch.tensor([0, 1] * 40)
    features = torch.randn(80, 4) * 0.3 + labels[:, None].float() * torch.tensor([2.0, -2.0, 0.0, 0.0])
    val = torch.randn(20, 4) * 0.3 + torch.tensor([0, 1] * 10)[:, None].float() * torch.tensor([2.0, -2.0, 0, 0])
    config = TrainConfig(data="", out="", unfreeze=0, epochs=30, lr=0.05, progress=False)
    rows = []
    best, ran = fit_cached(
        net, config, [features], labels, val, torch.tensor([0, 1] * 10), torch.device("cpu"), on_epoch=rows.append
    )
    assert 1 <= best <= ran == len(rows) <= 30
    scores = torch.sigmoid(predict_cached(net, val, torch.device("cpu")))
    assert scores[1::2].min() > scores[0::2].max()


def test_report_merges_runs_split_over_processes(tmp_path):
    """Draws of one curve run in two processes (JSON turns sizes into strings) add up to one curve."""
    import json

    from bench.generalisation import merge

    for name, probe, tuned in (("a", [0.90, 0.95], [0.85, 0.97]), ("b", [0.92, 0.96], [0.87, 0.99])):
        curves = {"random": {"probe": {"25": [probe[0]], "100": [probe[1]]}}}
        curves["random"]["fine-tune"] = {"25": [tuned[0]], "100": [tuned[1]]}
        (tmp_path / f"{name}.json").write_text(json.dumps({"config": {"backbone": "x"}, "curves": curves}))
    merged = merge([tmp_path / "a.json", tmp_path / "b.json"])
    assert merged["curves"]["random"]["probe"] == {25: [0.90, 0.92], 100: [0.95, 0.96]}
    assert merged["summary"]["curve_means"][25] == {"probe": pytest.approx(0.91), "fine-tune": pytest.approx(0.86)}
    assert merged["summary"]["probe_below"] == 100
