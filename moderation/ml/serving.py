"""Serving without torch: each network exported once to ONNX, run by ONNX Runtime, its input
prepared with Pillow and NumPy exactly as the torchvision eval transform prepares it.

A worker that finds a model version's serving file never imports torch: about 500 MB less
resident memory (the pinned torch build maps its CUDA libraries even on a CPU-only machine), and
ONNX Runtime runs these convolutional networks faster on CPU. Export happens where torch is
loaded anyway: when a model version is registered, or with ``manage.py export_serving``.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from moderation.ml.transforms import Preprocessing

if TYPE_CHECKING:
    import torch

OPSET = 17
_RESAMPLE = {
    "bicubic": Image.Resampling.BICUBIC,
    "bilinear": Image.Resampling.BILINEAR,
    "nearest": Image.Resampling.NEAREST,
}


def serving_paths(model_dir: str | Path, weights_sha256: str) -> tuple[Path, Path]:
    """The ONNX file of a model version and its description (what the output means, the input)."""
    base = Path(model_dir) / "serving" / weights_sha256
    return base.with_suffix(".onnx"), base.with_suffix(".json")


def export(net: torch.nn.Module, *, size: int, target: Path, description: dict) -> Path:
    """Write ``net`` (eval mode, batch dimension free) to ``target`` and its description beside it,
    each atomically (temporary file, then rename)."""
    import torch

    target.parent.mkdir(parents=True, exist_ok=True)
    # The description first: a reader that sees the network finds its description too.
    sidecar = target.with_suffix(".json")
    partial_sidecar = sidecar.with_name(f".{sidecar.name}.{os.getpid()}.partial")
    partial_sidecar.write_text(json.dumps(description, sort_keys=True))
    os.replace(partial_sidecar, sidecar)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    with torch.inference_mode(False), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript-based exporter announces its deprecation
        torch.onnx.export(
            net.eval(),
            (torch.zeros(1, 3, size, size),),
            str(partial),
            dynamo=False,
            input_names=["input"],
            output_names=["output"],
            dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
            opset_version=OPSET,
        )
    os.replace(partial, target)
    return target


def preprocess(images: Sequence[Image.Image], pre: Preprocessing) -> np.ndarray:
    """An NCHW float32 batch, as :func:`moderation.ml.transforms.eval_transform` makes it:
    short side resized (torchvision's rounding), centre crop (its rounding), scaled, normalised.
    Pillow's antialiased resampling is the algorithm torchvision's ``antialias=True`` follows."""
    batch = np.empty((len(images), 3, pre.size, pre.size), dtype=np.float32)
    mean = np.asarray(pre.mean, dtype=np.float32) * 255.0
    scale = 1.0 / (np.asarray(pre.std, dtype=np.float32) * 255.0)
    for i, image in enumerate(images):
        pixels = np.asarray(_geometry(image.convert("RGB"), pre), dtype=np.float32)
        batch[i] = ((pixels - mean) * scale).transpose(2, 0, 1)
    return batch


def _geometry(image: Image.Image, pre: Preprocessing) -> Image.Image:
    resample = _RESAMPLE[pre.interpolation]
    if pre.resize_mode == "squash":
        return image.resize((pre.size, pre.size), resample)
    width, height = image.size
    short = pre.resize_to
    size = (short, int(short * height / width)) if width <= height else (int(short * width / height), short)
    if size != image.size:
        image = image.resize(size, resample)
    left = round((size[0] - pre.size) / 2.0)
    top = round((size[1] - pre.size) / 2.0)
    return image.crop((left, top, left + pre.size, top + pre.size))


class OnnxNetwork:
    """An exported network in an ONNX Runtime session (CPU)."""

    def __init__(self, path: str | Path, *, threads: int | None = None) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.description = json.loads(Path(path).with_suffix(".json").read_text())
        self.preprocessing = Preprocessing.from_dict(self.description["preprocessing"])

    def __call__(self, images: Sequence[Image.Image]) -> np.ndarray:
        return self.session.run(None, {self.input_name: preprocess(images, self.preprocessing)})[0]


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def sigmoid(logits: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-logits))
