"""Build a classifier from a model version's architecture, weights file and config."""

from __future__ import annotations

from typing import Protocol


class Classifier(Protocol):
    categories: tuple[str, ...]
    min_decode_side: int

    def predict(self, images: list) -> list[dict[str, float]]: ...


class UnknownArchitecture(ValueError):
    pass


def build_classifier(architecture: str, config: dict, *, weights: str = "", threads: int | None = None) -> Classifier:
    from moderation.ml import baseline, checkpoints

    if architecture == baseline.ARCHITECTURE:
        return baseline.BaselineClassifier(threads=threads)
    if architecture == checkpoints.ARCHITECTURE:
        from moderation.ml.finetuned import FineTunedClassifier

        return FineTunedClassifier(weights, nudity=config.get("nudity", True), threads=threads)
    raise UnknownArchitecture(f"no classifier is known for architecture {architecture!r}")
