"""Retraining decides which categories to learn from the Category rows and the label counts."""

import csv

import pytest
from django.core.management import call_command
from django.urls import reverse

from feedback.models import TrainingRun
from feedback.services.categories import learn_plan
from moderation.models import Category
from reviews.services.claims import round_claim
from reviews.services.decisions import decision_create
from tests.factories import make_round, make_upload
from tests.feedback.test_loop import retrain_settings  # noqa: F401 - a fixture


def manifest(root, rows):
    """rows: (category, split) of harmful images, plus one safe image."""
    with (root / "manifest.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["file", "label", "split", "sha256", "category"])
        writer.writeheader()
        writer.writerow({"file": "s", "label": "safe", "split": "train", "sha256": "safe", "category": ""})
        for i, (category, split) in enumerate(rows):
            row = {"file": str(i), "label": "harmful", "split": split, "sha256": str(i), "category": category}
            writer.writerow(row)
    return root


@pytest.mark.django_db
def test_two_categories_with_enough_labels_make_a_multilabel_head(tmp_path):
    Category.objects.filter(key__in=["weapon", "violence"]).update(learn_from_labels=3)
    rows = [("weapon", "train")] * 3 + [("violence", "train"), ("violence", "val"), ("violence", "train")]
    rows += [("hate", "train")] + [("", "train")] * 2
    plan = learn_plan(manifest(tmp_path, rows))
    assert plan.outputs == ["weapon", "violence"] and plan.multilabel
    assert plan.labels == {"weapon": 3, "violence": 3, "hate": 1, "": 2}
    assert "weapon: 3 harmful labels (learns from 3): learned" in plan.lines
    assert "hate: 1 harmful labels (learns from 100): not yet, 99 more" in plan.lines
    assert "2 harmful labels name no active category: harmful in the overall figures only" in plan.lines


@pytest.mark.django_db
def test_an_inactive_category_is_never_learned(tmp_path):
    Category.objects.filter(key__in=["weapon", "violence"]).update(learn_from_labels=1)
    Category.objects.filter(key="violence").update(active=False)
    plan = learn_plan(manifest(tmp_path, [("weapon", "train"), ("violence", "train")]))
    assert plan.outputs == ["weapon"] and not plan.multilabel


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("rows", "outputs", "why"),
    [
        ([("violence", "train")], ["violence"], "the only category with enough labels"),
        ([], ["weapon"], "no category has enough labels yet"),
        ([("nudity", "train")], ["weapon"], "open_nsfw keeps nudity"),
    ],
)
def test_fewer_than_two_learned_categories_keep_the_single_output(tmp_path, rows, outputs, why):
    Category.objects.update(learn_from_labels=1)
    plan = learn_plan(manifest(tmp_path, rows))
    assert plan.outputs == outputs and not plan.multilabel
    assert why in plan.lines[-1]


@pytest.mark.django_db
def test_labels_only_in_val_do_not_make_a_category_learned(tmp_path):
    Category.objects.update(learn_from_labels=1)
    plan = learn_plan(manifest(tmp_path, [("weapon", "train"), ("hate", "val")]))
    assert plan.outputs == ["weapon"]
    assert "hate: 1 harmful labels, none in the training split: not learned" in plan.lines


@pytest.mark.slow
@pytest.mark.django_db
def test_a_run_learns_each_category_with_enough_labels(
    retrain_settings,  # noqa: F811
    tiny_dataset,
    moderator,
    admin_user,
    client,
):
    retrain_settings.VIGIL_RETRAIN_SUGGEST_MIN_PER_CLASS = 1
    Category.objects.filter(key__in=["weapon", "violence"]).update(learn_from_labels=3)
    for path in sorted(tiny_dataset.glob("*/*/*.jpg")):
        round_ = make_round(make_upload(data=path.read_bytes()), score=0.3)
        round_claim(round_id=round_.pk, moderator=moderator)
        harmful = path.parent.name == "harmful"
        # labelled_folder alternates rocket and motorcycle crops: call them weapons and violence.
        category = ("weapon", "violence")[int(path.stem.rsplit("_", 1)[1]) % 2] if harmful else ""
        decision_create(round_id=round_.pk, moderator=moderator, label=path.parent.name, category=category)

    call_command("retrain", "--force")
    run = TrainingRun.objects.get()
    assert run.status == "succeeded", run.log
    assert "categories: weapon: 8 harmful labels (learns from 3): learned" in run.log
    assert "categories: violence: 7 harmful labels (learns from 3): learned" in run.log
    assert "categories: a multi-label head: one output each for weapon, violence" in run.log
    assert run.metrics["categories"]["outputs"] == ["weapon", "violence"]
    candidate = run.candidate
    assert candidate.categories == ["weapon", "violence", "nudity"]  # nudity from open_nsfw
    metrics = candidate.metrics
    for name in ("weapon", "violence"):
        figures = metrics["val_by_category"][name]
        enough = min(figures["harmful"], figures["safe"]) >= 1
        assert (name in metrics["suggested_thresholds"]) == enough
        held = f"{name}: no thresholds suggested" in "\n".join(metrics["threshold_notes"])
        assert held == (not enough)
    assert set(candidate.metrics["heldout"]["candidate"]) >= {"roc_auc", "images"}
    client.force_login(admin_user)
    fragment = client.get(reverse("feedback:training_run", args=[run.pk])).content.decode()
    assert "<small data-learned>learns weapon, violence</small>" in fragment
