"""Build a classifier from a model version's architecture, weights file and config."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

# The architecture name of fine-tuned checkpoints (moderation/ml/checkpoints.py), here so that
# choosing a classifier never imports torch.
FINETUNED_ARCHITECTURE = "harmfulnet"


class Classifier(Protocol):
    categories: tuple[str, ...]
    min_decode_side: int

    def predict(self, images: list) -> list[dict[str, float]]: ...


class UnknownArchitecture(ValueError):
    pass


def build_classifier(
    architecture: str,
    config: dict,
    *,
    weights: str = "",
    threads: int | None = None,
    serving: Path | None = None,
    tiling: str = "none",
    open_nsfw: Path | None = None,
) -> Classifier:
    """``serving``: the version's ONNX export, when there is one (then torch is not imported).
    ``tiling``: the version's tiled scoring, ``none``, ``2x2`` or ``3x3`` (moderation/ml/tiling.py).
    ``open_nsfw``: the open_nsfw ONNX file to run instead of the package's (a quantized version's)."""
    from moderation.ml import baseline
    from moderation.ml.tiling import Tiling

    tiles = Tiling.parse(tiling)
    if architecture == baseline.ARCHITECTURE:
        return baseline.BaselineClassifier(threads=threads, serving=serving, tiling=tiles, open_nsfw=open_nsfw)
    if architecture == FINETUNED_ARCHITECTURE:
        from moderation.ml.finetuned import FineTunedClassifier

        return FineTunedClassifier(
            weights,
            nudity=config.get("nudity", True),
            threads=threads,
            serving=serving,
            tiling=tiles,
            open_nsfw=open_nsfw,
        )
    raise UnknownArchitecture(f"no classifier is known for architecture {architecture!r}")
