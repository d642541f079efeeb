"""Run a classifier over image files: batched for evaluation, one at a time (timed) for the CLI."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from moderation.ml.images import open_rgb
from moderation.ml.loading import Classifier


def harmful_score(category_scores: dict[str, float], category: str | None = None) -> float:
    """One harmful score: the chosen category's, or the maximum over categories (as routing does)."""
    if category is not None:
        if category not in category_scores:
            raise KeyError(f"the model has no category {category!r} (it has {', '.join(category_scores)})")
        return category_scores[category]
    return max(category_scores.values())


@dataclass(frozen=True)
class FileScore:
    path: Path
    scores: dict[str, float] | None  # None when the file could not be decoded
    error: str = ""
    latency_ms: float = 0.0


def _decode(path: Path, min_side: int) -> tuple[object | None, str]:
    try:
        return open_rgb(path, min_side=min_side), ""
    except Exception as exc:  # any undecodable file is reported, not fatal
        return None, f"cannot decode: {type(exc).__name__}: {exc}"


def score_files(
    classifier: Classifier, paths: Sequence[Path], *, batch_size: int = 32, progress=None
) -> list[FileScore]:
    """Category scores for every file, batched; files that do not decode get an error instead."""
    results: list[FileScore] = []
    for start in range(0, len(paths), batch_size):
        chunk = paths[start : start + batch_size]
        decoded = [_decode(path, classifier.min_decode_side) for path in chunk]
        images = [image for image, _ in decoded if image is not None]
        predictions = iter(classifier.predict(images))
        for path, (image, error) in zip(chunk, decoded, strict=True):
            results.append(FileScore(path, next(predictions) if image is not None else None, error))
        if progress is not None:
            progress.update(len(chunk))
    return results


def classify_each(classifier: Classifier, paths: Iterable[Path]) -> Iterable[FileScore]:
    """Score files one at a time, timing decode + preprocessing + inference for each."""
    for path in paths:
        started = time.perf_counter()
        image, error = _decode(path, classifier.min_decode_side)
        scores = classifier.predict([image])[0] if image is not None else None
        yield FileScore(path, scores, error, (time.perf_counter() - started) * 1000)
