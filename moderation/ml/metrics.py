"""Classification metrics for harmful-vs-safe scores, computed with scikit-learn.

Labels are 0 (safe) and 1 (harmful); scores are P(harmful). "Positive" is always *harmful*:
missing harmful content is the costly error, so recall on that class is what matters most.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn import metrics as skm

from moderation.ml.datasets import CLASSES


def _auc(labels: np.ndarray, scores: np.ndarray) -> float:
    return float(skm.roc_auc_score(labels, scores)) if len(np.unique(labels)) == 2 else float("nan")


def binary_metrics(labels: Sequence[int], scores: Sequence[float], threshold: float = 0.5) -> dict[str, float]:
    """Accuracy, harmful precision/recall/F1 at ``threshold``, and ROC AUC."""
    labels = np.asarray(labels, dtype=int)
    scores = np.asarray(scores, dtype=float)
    predicted = (scores >= threshold).astype(int)
    precision, recall, f1, _ = skm.precision_recall_fscore_support(
        labels, predicted, labels=[1], average=None, zero_division=0
    )
    return {
        "accuracy": float(skm.accuracy_score(labels, predicted)),
        "precision": float(precision[0]),
        "recall": float(recall[0]),
        "f1": float(f1[0]),
        "roc_auc": _auc(labels, scores),
    }


ECE_BINS = 15


def expected_calibration_error(labels: Sequence[int], scores: Sequence[float], *, bins: int = ECE_BINS) -> float:
    """Expected calibration error, the standard definition (Guo et al. 2017; Naeini et al. 2015):
    each image's confidence is the probability of the class it is predicted as (``max(p, 1 - p)``,
    harmful when ``p >= 0.5``); confidences fall into ``bins`` equal-width bins of [0, 1] (a bin
    holds ``lo < confidence <= hi``); ECE is the image-weighted mean over bins of
    ``|accuracy - mean confidence|``. 0 is perfectly calibrated; it is NaN for no images."""
    labels = np.asarray(labels, dtype=int)
    scores = np.asarray(scores, dtype=float)
    if len(labels) == 0:
        return float("nan")
    predicted = (scores >= 0.5).astype(int)
    confidence = np.where(predicted == 1, scores, 1.0 - scores)
    correct = (predicted == labels).astype(float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    # The bin of each confidence, (lo, hi]; a confidence of exactly 0 joins the first bin.
    index = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        members = index == b
        if members.any():
            ece += members.mean() * abs(correct[members].mean() - confidence[members].mean())
    return float(ece)


def suggest_thresholds(
    labels: Sequence[int], scores: Sequence[float], *, min_recall: float = 0.99, min_precision: float = 0.98
) -> dict[str, float]:
    """Routing thresholds read off the ROC/PR curves, as the source paper advises.

    ``approve_below``: the largest threshold that still keeps ``min_recall`` of harmful images out of
    auto-approve. ``reject_from``: the smallest threshold whose auto-rejects are ``min_precision``
    precise (1.0 when none is). Scores in between go to humans.
    """
    labels = np.asarray(labels, dtype=int)
    scores = np.asarray(scores, dtype=float)
    harmful = np.sort(scores[labels == 1])
    if len(harmful) == 0:
        return {"approve_below": 0.0, "reject_from": 1.0}
    # Scores strictly below approve_below are approved: allow at most floor((1-r)*n) harmful below it.
    allowed = int(np.floor((1 - min_recall) * len(harmful) + 1e-9))
    approve_below = float(harmful[allowed])
    precision, _recall, thresholds = skm.precision_recall_curve(labels, scores)
    ok = np.nonzero(precision[:-1] >= min_precision)[0]
    reject_from = float(thresholds[ok[0]]) if len(ok) else 1.0
    reject_from = max(reject_from, approve_below)
    return {"approve_below": round(approve_below, 6), "reject_from": round(reject_from, 6)}


# Fewer held-out images of a class than this and a suggestion is noise: at 0.99 recall, the
# approve threshold sits on the lowest-scored harmful image, and 142 labels once produced a
# "policy" with no human band at all (approve_below = reject_from).
SUGGEST_MIN_PER_CLASS = 50


def threshold_suggestion(
    labels: Sequence[int], scores: Sequence[float], *, min_per_class: int = SUGGEST_MIN_PER_CLASS
) -> tuple[dict[str, float] | None, list[str]]:
    """:func:`suggest_thresholds` with its limits said: ``(None, [why])`` when the validation set
    has fewer than ``min_per_class`` images of either class; otherwise the thresholds and notes,
    one of which says so when the suggestion leaves no human band (every image auto-decided)."""
    labels = np.asarray(labels, dtype=int)
    harmful, safe = int((labels == 1).sum()), int((labels == 0).sum())
    if min(harmful, safe) < min_per_class:
        return None, [
            f"no thresholds suggested: {harmful} harmful and {safe} safe validation images, "
            f"need at least {min_per_class} of each"
        ]
    thresholds = suggest_thresholds(labels, scores)
    notes = [f"suggested from {harmful} harmful and {safe} safe validation images"]
    if thresholds["reject_from"] <= thresholds["approve_below"]:
        notes.append(
            f"the suggestion leaves NO human band (approve below {thresholds['approve_below']:g}, reject from "
            f"{thresholds['reject_from']:g}): every image would be decided automatically"
        )
    return thresholds, notes


def comparison_metrics(labels: Sequence[int], scores: Sequence[float], *, precision: float = 0.9) -> dict[str, float]:
    """Threshold-free figures for comparing two models on the same images, whatever their
    calibration: ROC AUC, the best F1 over all thresholds, and harmful recall at the threshold
    where ``precision`` of the flagged images are harmful (the most a precise model catches);
    plus each one's ECE, how far its scores are from calibrated probabilities on these images."""
    labels = np.asarray(labels, dtype=int)
    scores = np.asarray(scores, dtype=float)
    curve_precision, curve_recall, _ = skm.precision_recall_curve(labels, scores)
    with np.errstate(divide="ignore", invalid="ignore"):
        f1 = np.where(
            curve_precision + curve_recall > 0,
            2 * curve_precision * curve_recall / (curve_precision + curve_recall),
            0.0,
        )
    precise = curve_recall[curve_precision >= precision]
    return {
        "roc_auc": _auc(labels, scores),
        "f1": float(f1.max()),
        "harmful_recall": float(precise.max()) if len(precise) else 0.0,
        "ece": expected_calibration_error(labels, scores),
        "images": len(labels),
    }


@dataclass
class Evaluation:
    labels: np.ndarray
    scores: np.ndarray
    threshold: float = 0.5

    @property
    def predicted(self) -> np.ndarray:
        return (self.scores >= self.threshold).astype(int)

    def report(self) -> dict:
        """scikit-learn's classification report (the source paper's table) as a dict."""
        return skm.classification_report(
            self.labels, self.predicted, labels=[0, 1], target_names=list(CLASSES), output_dict=True, zero_division=0
        )

    def confusion(self) -> np.ndarray:
        """Rows: true safe, true harmful; columns: predicted safe, predicted harmful."""
        return skm.confusion_matrix(self.labels, self.predicted, labels=[0, 1])

    def roc_auc(self) -> float:
        return _auc(self.labels, self.scores)

    def ece(self) -> float:
        return expected_calibration_error(self.labels, self.scores)

    def summary(self) -> dict:
        return {
            **binary_metrics(self.labels, self.scores, self.threshold),
            "ece": self.ece(),
            "threshold": self.threshold,
            "support": len(self.labels),
            "confusion": self.confusion().tolist(),
        }

    def format(self) -> str:
        """The paper's table, the confusion matrix and ROC AUC, as text."""
        text = skm.classification_report(
            self.labels, self.predicted, labels=[0, 1], target_names=list(CLASSES), digits=4, zero_division=0
        )
        (tn, fp), (fn, tp) = self.confusion()
        width = max(len(str(v)) for v in (tn, fp, fn, tp)) + 2
        matrix = (
            f"confusion matrix (rows: true, columns: predicted) at threshold {self.threshold:g}\n"
            f"{'':>9}{'safe':>{width + 2}}{'harmful':>{width + 3}}\n"
            f"{'safe':>9}{tn:>{width + 2}}{fp:>{width + 3}}\n"
            f"{'harmful':>9}{fn:>{width + 2}}{tp:>{width + 3}}\n"
        )
        return (
            f"{text}\n{matrix}\nROC AUC {self.roc_auc():.4f}\n"
            f"ECE {self.ece():.4f} (expected calibration error, {ECE_BINS} equal-width bins; 0 is calibrated)\n"
        )

    def write_roc_png(self, path: str | Path, *, title: str = "ROC curve") -> Path:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot as plt

        fpr, tpr, _ = skm.roc_curve(self.labels, self.scores)
        figure, axes = plt.subplots(figsize=(5, 5), dpi=100)
        axes.plot(fpr, tpr, label=f"model (AUC {self.roc_auc():.3f})")
        axes.plot([0, 1], [0, 1], linestyle="--", color="grey", label="chance")
        axes.set(xlabel="false positive rate (safe flagged)", ylabel="true positive rate (harmful caught)", title=title)
        axes.set_xlim(0, 1)
        axes.set_ylim(0, 1.01)
        axes.legend(loc="lower right")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, format="png", bbox_inches="tight")
        plt.close(figure)
        return path
