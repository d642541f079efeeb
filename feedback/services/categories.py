"""Which categories a retraining run learns an output for.

A category is learned once it is active and ``learn_from_labels`` standing harmful decisions in
the export name it (at least one of them in the training split). Two or more such categories: a
multi-label head, one output each (:mod:`moderation.ml.multilabel`). One: a single harmful
output routed as that category, every harmful label its positive (the model as before). None
(or nudity alone, which open_nsfw keeps: a single output is never compared with it): the single
output routed as ``weapon``, as retraining always did. The plan's lines say which and
why, and go into the run's log and metrics.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from moderation.services.categories import categories_active

# As moderation.ml.multilabel.NUDITY; not imported from there, which loads torch (the web path imports this module).
NUDITY = "nudity"

DEFAULT_CATEGORY = "weapon"
# A base dataset's harmful images without a category of their own (an ImageFolder) count as this
# one: the category every single-output model before them routed its harmful score as, so a
# multi-label head that learns it keeps rehearsing them.
BASE_CATEGORY = DEFAULT_CATEGORY


@dataclass
class LearnPlan:
    outputs: list[str]  # the categories the network's outputs route as, in order
    labels: dict[str, int] = field(default_factory=dict)  # harmful images per category tag ("" none)
    lines: list[str] = field(default_factory=list)

    @property
    def multilabel(self) -> bool:
        return len(self.outputs) > 1

    def as_dict(self) -> dict:
        return {"outputs": self.outputs, "harmful_labels": self.labels, "why": self.lines}


def harmful_labels(export_root: Path) -> tuple[dict[str, int], dict[str, int]]:
    """Harmful images per category in an export's manifest (an image counts once, however many
    video frames it was exported as): in all, and in the training split."""
    seen: dict[str, set[str]] = defaultdict(set)
    train: dict[str, set[str]] = defaultdict(set)
    with (Path(export_root) / "manifest.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            if row["label"] != "harmful":
                continue
            seen[row["category"]].add(row["sha256"])
            if row["split"] == "train":
                train[row["category"]].add(row["sha256"])
    return {k: len(v) for k, v in seen.items()}, {k: len(v) for k, v in train.items()}


def learn_plan(export_root: Path) -> LearnPlan:
    counts, in_train = harmful_labels(export_root)
    active = categories_active()
    learned, lines = [], []
    for category in active:
        n, needed = counts.get(category.key, 0), category.learn_from_labels
        if n >= needed and in_train.get(category.key, 0) > 0:
            learned.append(category.key)
            lines.append(f"{category.key}: {n} harmful labels (learns from {needed}): learned")
        elif n >= needed:
            lines.append(f"{category.key}: {n} harmful labels, none in the training split: not learned")
        else:
            lines.append(f"{category.key}: {n} harmful labels (learns from {needed}): not yet, {needed - n} more")
    known = {c.key for c in active}
    other = sum(n for key, n in counts.items() if key not in known)
    if other:
        lines.append(f"{other} harmful labels name no active category: harmful in the overall figures only")
    if len(learned) > 1:
        lines.append(f"a multi-label head: one output each for {', '.join(learned)}")
        if NUDITY in learned:
            lines.append("nudity: the learned output replaces open_nsfw only if it beats open_nsfw's AUC on val")
        return LearnPlan(learned, counts, lines)
    output = learned[0] if learned and learned[0] != NUDITY else DEFAULT_CATEGORY
    if learned == [NUDITY]:
        # A single output is never compared with open_nsfw: nudity stays open_nsfw's.
        because = "nudity alone has enough labels, and open_nsfw keeps nudity until a multi-label head beats it"
    elif learned:
        because = "the only category with enough labels"
    else:
        because = "no category has enough labels yet"
    lines.append(f"one harmful output routed as {output} ({because}); every harmful label is its positive")
    return LearnPlan([output], counts, lines)
