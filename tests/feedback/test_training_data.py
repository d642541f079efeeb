"""What a retraining run learns from: the deployment's export plus the base dataset (rehearsal),
the recipe by the amount of data, and the guard sets a candidate is judged on."""

import csv
from pathlib import Path

import pytest

from feedback.services.heldout import DEPLOYMENT, guard_sets
from feedback.services.training_data import (
    FINE_TUNE,
    PROBE,
    HeldOutSet,
    base_data,
    recipe_for,
    write_training_manifest,
)
from moderation.ml.datasets import DatasetError, load_split
from moderation.models import ModelVersion
from tests.images import labelled_folder


@pytest.fixture
def base_folder(tmp_path):
    root = tmp_path / "base"
    labelled_folder(root, train=4, val=2, test=3, seed=3)
    return root


def test_no_base_dataset_configured_means_none(settings):
    settings.VIGIL_RETRAIN_BASE_DATA = ""
    assert base_data() is None


def test_the_base_dataset_trains_on_train_and_val_and_guards_with_test(settings, base_folder):
    settings.VIGIL_RETRAIN_BASE_DATA = str(base_folder)
    base = base_data()
    assert (len(base.train), len(base.val)) == (8, 4)
    assert base.heldout == HeldOutSet("base dataset", str(base_folder), "test", "")
    assert len(base.heldout.samples()) == 6


def test_without_a_test_split_val_is_the_guard_and_stays_out_of_training(settings, tmp_path):
    root = tmp_path / "base"
    labelled_folder(root, train=4, val=3)
    settings.VIGIL_RETRAIN_BASE_DATA = str(root)
    base = base_data()
    assert base.heldout.split == "val" and base.val == []


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda root: None, "has no readable train split"),
        (lambda root: labelled_folder(root, train=3, val=0), "needs a test or val split"),
    ],
)
def test_a_configured_base_dataset_that_cannot_serve_is_an_error_not_skipped(settings, tmp_path, make, message):
    root = tmp_path / "base"
    make(root)
    settings.VIGIL_RETRAIN_BASE_DATA = str(root)
    with pytest.raises(DatasetError, match=message):
        base_data()


def test_a_one_class_guard_split_is_refused(settings, tmp_path):
    root = tmp_path / "base"
    labelled_folder(root, train=3, val=2, test=2)
    for path in (root / "test" / "harmful").iterdir():
        path.unlink()
    settings.VIGIL_RETRAIN_BASE_DATA = str(root)
    with pytest.raises(DatasetError, match="test split needs both safe and harmful"):
        base_data()


def test_the_manifest_lists_both_sources_in_place(settings, tmp_path, base_folder):
    deployment = tmp_path / "export"
    labelled_folder(deployment, train=5, val=2, seed=9)
    settings.VIGIL_RETRAIN_BASE_DATA = str(base_folder)
    counts = write_training_manifest(tmp_path / "combined", deployment=deployment, base=base_data())
    assert counts == {
        "train/deployment": {"safe": 5, "harmful": 5},
        "val/deployment": {"safe": 2, "harmful": 2},
        "train/base": {"safe": 4, "harmful": 4},
        "val/base": {"safe": 2, "harmful": 2},
    }
    rows = list(csv.DictReader((tmp_path / "combined" / "manifest.csv").open()))
    assert all(Path(row["file"]).is_absolute() and Path(row["file"]).is_file() for row in rows)
    assert not any(str(tmp_path / "combined") in row["file"] for row in rows)  # nothing copied
    assert len(load_split(tmp_path / "combined", "train")) == 18
    assert all(str(base_folder / "test") not in row["file"] for row in rows)  # the guard never trains


def test_the_recipe_follows_the_amount_of_data(settings):
    settings.VIGIL_RETRAIN_PROBE_BELOW = 200
    settings.VIGIL_RETRAIN_UNFREEZE = 2
    assert recipe_for(150)[:2] == (PROBE, 0)
    assert recipe_for(200)[:2] == (FINE_TUNE, 2)
    assert "150 training images < VIGIL_RETRAIN_PROBE_BELOW=200" in recipe_for(150)[2]


@pytest.mark.django_db
def test_guard_sets_keep_what_the_active_model_was_judged_on(settings, base_folder, tmp_path):
    settings.VIGIL_RETRAIN_BASE_DATA = str(base_folder)
    base = base_data()
    old = HeldOutSet("base dataset", str(tmp_path / "old-base"), "test")
    active = ModelVersion(
        name="m",
        metrics={
            "heldout": {
                "sets": [
                    HeldOutSet(DEPLOYMENT, str(tmp_path / "run-1" / "data"), "val").as_dict(),
                    base.heldout.as_dict(),
                    old.as_dict(),
                ]
            }
        },
    )
    assert guard_sets(base=base, active=active) == [base.heldout, old]
    assert guard_sets(base=None, active=ModelVersion(name="baseline", metrics={})) == []
