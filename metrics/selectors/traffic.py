"""Traffic of one model version over a window, from the roll-ups: cells of score bins with
counts, and the model-versus-human figures computed from them with scikit-learn."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from django.db.models import Sum

from metrics.models import ScoreCell
from metrics.selectors.windows import Window
from moderation.bins import EDGES, parse_cell, threshold_position
from moderation.models import ModelVersion

COUNTS = (
    "scored",
    "auto_approved",
    "auto_rejected",
    "queued",
    "labelled_harmful",
    "labelled_safe",
    "audited",
    "overturned",
    "peer_compared",
    "peer_agreed",
)


@dataclass(slots=True)  # not frozen: a page builds tens of thousands of these, and frozen ones cost twice as much
class Cell:
    bins: dict[str, int]
    counts: dict[str, int]
    # Standing harmful labels by the category the moderator gave (labels without one: totals only).
    harmful_by_category: dict[str, int] = field(default_factory=dict)

    @property
    def harmful_bin(self) -> int:
        """The bin of the harmful score, the highest category score (bins are monotone)."""
        return max(self.bins.values(), default=0)


def traffic_cells(*, model_version: ModelVersion, window: Window) -> list[Cell]:
    """The window's cells, summed over hours by the database, with the harmful labels of each
    cell broken down by label category (the roll-up rows of a cell, one per label category)."""
    rows = (
        ScoreCell.objects.filter(model_version=model_version, hour__gte=window.since, hour__lt=window.until)
        .values("cell", "label_category")
        .annotate(**{name: Sum(name) for name in COUNTS})
        .order_by("cell")
    )
    cells: dict[str, Cell] = {}
    for row in rows:
        counts = {name: row[name] for name in COUNTS}
        cell = cells.get(row["cell"])
        if cell is None:
            cell = cells[row["cell"]] = Cell(bins=parse_cell(row["cell"]), counts=counts)
        else:
            for name in COUNTS:
                cell.counts[name] += counts[name]
        if row["label_category"] and row["labelled_harmful"]:
            cell.harmful_by_category[row["label_category"]] = row["labelled_harmful"]
    return list(cells.values())


def totals(cells: list[Cell]) -> dict[str, int]:
    return {name: sum(c.counts[name] for c in cells) for name in COUNTS}


@dataclass
class ModelVsHumans:
    """The model's harmful score against the standing human labels, at one operating threshold."""

    threshold: float
    labelled: int
    confusion: list[list[int]] | None = None  # [[TN, FP], [FN, TP]], rows = human label
    report: dict | None = None  # scikit-learn's classification report (output_dict)
    accuracy: float | None = None
    roc_auc: float | None = None
    roc: tuple[list[float], list[float]] = field(default_factory=lambda: ([], []))
    pr: tuple[list[float], list[float]] = field(default_factory=lambda: ([], []))

    @property
    def harmful(self) -> dict | None:
        return self.report["harmful"] if self.report else None

    @property
    def f1(self) -> float | None:
        return self.harmful["f1-score"] if self.report else None

    @property
    def rows(self) -> list[tuple[str, dict]]:
        """The report's rows for a template (keys without hyphens)."""
        if not self.report:
            return []
        return [
            (name, {"precision": r["precision"], "recall": r["recall"], "f1": r["f1-score"], "support": r["support"]})
            for name, r in self.report.items()
            if name != "accuracy"
        ]


def labelled_arrays(cells: list[Cell]) -> tuple[np.ndarray, ...]:
    """One weighted sample per (cell, label): the aggregate form scikit-learn accepts through
    ``sample_weight``, giving the same figures as one row per decision."""
    scores, labels, weights = [], [], []
    for cell in cells:
        for label, count in ((1, cell.counts["labelled_harmful"]), (0, cell.counts["labelled_safe"])):
            if count:
                scores.append(cell.harmful_bin)
                labels.append(label)
                weights.append(count)
    return np.asarray(scores, dtype=float), np.asarray(labels, dtype=int), np.asarray(weights, dtype=float)


def model_vs_humans(cells: list[Cell], *, threshold: float = 0.5) -> ModelVsHumans:
    """Confusion matrix, classification report, accuracy and ROC AUC with scikit-learn. The
    threshold snaps to the nearest bin edge; 0.5 is an edge, so the default is exact. ROC AUC and
    the curves see scores at bin resolution (ties within a bin count half)."""
    from sklearn import metrics as skm  # heavy: loaded by the admin pages that need it, not by every web process

    position = threshold_position(threshold)
    scores, labels, weights = labelled_arrays(cells)
    result = ModelVsHumans(threshold=EDGES[position], labelled=int(weights.sum()))
    if not len(scores):
        return result
    predicted = (scores >= position).astype(int)
    matrix = skm.confusion_matrix(labels, predicted, labels=[0, 1], sample_weight=weights)
    result.confusion = [[round(float(v)) for v in row] for row in matrix]
    result.report = skm.classification_report(
        labels,
        predicted,
        labels=[0, 1],
        target_names=["safe", "harmful"],
        sample_weight=weights,
        output_dict=True,
        zero_division=0,
    )
    result.accuracy = float(skm.accuracy_score(labels, predicted, sample_weight=weights))
    if len(set(labels.tolist())) == 2:
        result.roc_auc = float(skm.roc_auc_score(labels, scores, sample_weight=weights))
        fpr, tpr, _ = skm.roc_curve(labels, scores, sample_weight=weights)
        precision, recall, _ = skm.precision_recall_curve(labels, scores, sample_weight=weights)
        result.roc = (fpr.tolist(), tpr.tolist())
        result.pr = (recall.tolist(), precision.tolist())
    return result


@dataclass
class CategoryCurve:
    """One category's score against the labels that speak to it: harmful labels naming the
    category (positives) and safe labels (negatives), in the cells where the model scored it."""

    name: str
    harmful: int
    safe: int
    roc_auc: float | None = None
    roc: tuple[list[float], list[float]] = field(default_factory=lambda: ([], []))


def category_curves(cells: list[Cell], categories: list[str]) -> list[CategoryCurve]:
    """A ROC per category (bin resolution, as :func:`model_vs_humans`); a category without both
    kinds of labels gets its counts and no curve."""
    from sklearn import metrics as skm

    curves = []
    for name in categories:
        scores, labels, weights = [], [], []
        for cell in cells:
            if name not in cell.bins:
                continue
            for label, count in ((1, cell.harmful_by_category.get(name, 0)), (0, cell.counts["labelled_safe"])):
                if count:
                    scores.append(cell.bins[name])
                    labels.append(label)
                    weights.append(count)
        harmful = int(sum(w for w, y in zip(weights, labels, strict=True) if y))
        curve = CategoryCurve(name, harmful, int(sum(weights)) - harmful)
        if curve.harmful and curve.safe:
            curve.roc_auc = float(skm.roc_auc_score(labels, scores, sample_weight=weights))
            fpr, tpr, _ = skm.roc_curve(labels, scores, sample_weight=weights)
            curve.roc = (fpr.tolist(), tpr.tolist())
        curves.append(curve)
    return curves
