"""What a retraining run learns from, and how.

**Rehearsal.** A deployment's own labels are few and narrow: a model retrained on 142 decisions
about CCTV and workshop photos scored 0.99 on those and 0.86 AUC on the benchmark it used to know
(docs/benchmarks.md). So a run trains on this deployment's labels *and* on a base dataset the
operator points it at (``VIGIL_RETRAIN_BASE_DATA``: an ImageFolder they have the rights to),
listed together in one manifest; the images stay where they are. The export already holds every
standing human decision ever made, so earlier exports are rehearsed by construction.

**Recipe.** With few labels a linear probe on frozen features beats fine-tuning the top stages
(bench/generalisation.py measures where): under ``VIGIL_RETRAIN_PROBE_BELOW`` training images the
run trains the head only, from there up it fine-tunes ``VIGIL_RETRAIN_UNFREEZE`` stages. The
choice and its reason are written to the run's log and metrics.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from moderation.ml.datasets import CLASSES, DatasetError, Sample, class_counts, load_split

PROBE, FINE_TUNE = "probe", "fine-tune"


@dataclass(frozen=True)
class HeldOutSet:
    """A labelled split a candidate is judged on, described so a later run can find it again."""

    name: str
    root: str
    split: str | None
    splits_file: str = ""

    def samples(self) -> list[Sample]:
        return load_split(self.root, self.split, splits_file=self.splits_file or None)

    def as_dict(self) -> dict:
        return {"name": self.name, "root": self.root, "split": self.split, "splits_file": self.splits_file}

    @classmethod
    def from_dict(cls, data: dict) -> HeldOutSet:
        return cls(data["name"], data["root"], data.get("split"), data.get("splits_file") or "")

    @property
    def key(self) -> tuple:
        return (str(Path(self.root).resolve()), self.split, self.splits_file)


@dataclass(frozen=True)
class BaseData:
    """The operator's base dataset: its train (and, with a test split, val) images join training;
    its test split (else val) is the guard against forgetting."""

    root: str
    splits_file: str
    train: list[Sample]
    val: list[Sample]
    heldout: HeldOutSet


def base_data() -> BaseData | None:
    """The configured base dataset, or None when none is configured. A configured one that cannot
    be read is an error (the run fails and says why), never quietly skipped."""
    root = settings.VIGIL_RETRAIN_BASE_DATA
    if not root:
        return None
    splits_file = settings.VIGIL_RETRAIN_BASE_SPLITS
    where = f"the base dataset VIGIL_RETRAIN_BASE_DATA={root}"
    try:
        train = load_split(root, "train", splits_file=splits_file or None)
    except DatasetError as exc:
        raise DatasetError(f"{where} has no readable train split: {exc}") from None
    splits = {}
    for split in ("val", "test"):
        try:
            splits[split] = load_split(root, split, splits_file=splits_file or None)
        except DatasetError:
            continue
    if not splits:
        raise DatasetError(f"{where} needs a test or val split to check that retraining forgets nothing")
    heldout_split = "test" if "test" in splits else "val"
    counts = class_counts(splits[heldout_split])
    if min(counts.values()) == 0:
        raise DatasetError(f"{where}: its {heldout_split} split needs both safe and harmful images, has {counts}")
    return BaseData(
        root=str(root),
        splits_file=splits_file,
        train=train,
        val=splits.get("val", []) if heldout_split == "test" else [],
        heldout=HeldOutSet("base dataset", str(root), heldout_split, splits_file),
    )


def write_training_manifest(
    target: Path, *, deployment: Path, base: BaseData | None, base_category: str = ""
) -> dict[str, dict[str, int]]:
    """One manifest (absolute paths) listing the deployment's train/val export and the base
    dataset's train/val images; returns the class counts per ``split/source``. ``category``
    carries each harmful image's category (the export's; a base image's own when its manifest
    has one, else ``base_category``), which a multi-label head learns from."""
    rows: list[tuple[str, Sample, str]] = []
    for split in ("train", "val"):
        rows.extend((split, sample, "deployment") for sample in load_split(deployment, split))
    if base is not None:
        rows.extend(("train", sample, "base") for sample in base.train)
        rows.extend(("val", sample, "base") for sample in base.val)
    target.mkdir(parents=True, exist_ok=True)
    counts: dict[str, dict[str, int]] = {}
    with (target / "manifest.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "label", "split", "source", "category"])
        for split, sample, source in rows:
            category = (sample.category or (base_category if source == "base" else "")) if sample.label else ""
            writer.writerow([str(Path(sample.path).resolve()), CLASSES[sample.label], split, source, category])
            bucket = counts.setdefault(f"{split}/{source}", dict.fromkeys(CLASSES, 0))
            bucket[CLASSES[sample.label]] += 1
    return counts


def recipe_for(train_images: int) -> tuple[str, int, str]:
    """(recipe, backbone stages to unfreeze, why) for a run with ``train_images`` training images."""
    below = settings.VIGIL_RETRAIN_PROBE_BELOW
    if train_images < below:
        return PROBE, 0, f"{train_images} training images < VIGIL_RETRAIN_PROBE_BELOW={below}: linear probe (head only)"
    stages = settings.VIGIL_RETRAIN_UNFREEZE
    return (
        FINE_TUNE if stages else PROBE,
        stages,
        f"{train_images} training images ≥ VIGIL_RETRAIN_PROBE_BELOW={below}: fine-tune the top {stages} stages",
    )
