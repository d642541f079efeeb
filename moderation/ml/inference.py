"""Run a classifier over image files: batched for evaluation, one at a time (timed) for the CLI.
An animated file or a video counts as its worst frame, as in the worker."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from media.frames import Frame, frames_to_score
from media.video import looks_like_video, sample_frames
from moderation.ml.loading import Classifier


def harmful_score(category_scores: dict[str, float], category: str | None = None) -> float:
    """One harmful score: the chosen category's, or the maximum over categories (as routing does)."""
    if category is not None:
        if category not in category_scores:
            raise KeyError(f"the model has no category {category!r} (it has {', '.join(category_scores)})")
        return category_scores[category]
    return max(category_scores.values())


DEFAULT_MAX_FRAMES = 32  # as VIGIL_MAX_SCORED_FRAMES


@dataclass(frozen=True)
class FileScore:
    path: Path
    scores: dict[str, float] | None  # None when the file could not be decoded
    error: str = ""
    latency_ms: float = 0.0
    # Animated files: every frame up to the cap is scored (media.frames), ``scores`` is the
    # per-category maximum, and this is the frame with the highest score. None for a still image.
    worst_frame: int | None = None
    # Videos: every sampled frame is scored (media.video), and this is the worst one's time.
    worst_time: float | None = None


def _decode(path: Path, min_side: int, max_frames: int) -> tuple[list[Frame], list[float] | None, str]:
    """The frames to score (a video's sampled frames, with their times), or an error."""
    try:
        with path.open("rb") as handle:
            video = looks_like_video(handle.read(16))
        if video:
            times: list[float] = []
            frames = []
            for index, sampled in enumerate(sample_frames(str(path))):
                times.append(sampled.time)
                frames.append(Frame(index, sampled.image))
            return frames, times, "" if frames else "cannot decode: the video has no frame"
        with Image.open(path) as image:
            frames = list(frames_to_score(image, cap=max_frames, min_side=min_side))
            for frame in frames:
                frame.image.load()  # before the file closes
        return frames, None, ""
    except Exception as exc:  # any undecodable file is reported, not fatal
        return [], None, f"cannot decode: {type(exc).__name__}: {exc}"


def _combine(
    path: Path, frames: list[Frame], predictions: list[dict[str, float]], error: str, times: list[float] | None = None
) -> FileScore:
    """One file's result from its frames' predictions: the maximum per category."""
    if not frames:
        return FileScore(path, None, error)
    if len(frames) == 1 and times is None:
        return FileScore(path, predictions[0])
    scores = {name: max(p[name] for p in predictions) for name in predictions[0]}
    worst = max(range(len(frames)), key=lambda i: max(predictions[i].values()))
    return FileScore(path, scores, worst_frame=frames[worst].index, worst_time=times[worst] if times else None)


def score_files(
    classifier: Classifier,
    paths: Sequence[Path],
    *,
    batch_size: int = 32,
    progress=None,
    max_frames: int = DEFAULT_MAX_FRAMES,
) -> list[FileScore]:
    """Category scores for every file (the maximum over the frames of an animated one), in
    batches of files; files that do not decode get an error instead."""
    results: list[FileScore] = []
    for start in range(0, len(paths), batch_size):
        chunk = paths[start : start + batch_size]
        decoded = [_decode(path, classifier.min_decode_side, max_frames) for path in chunk]
        predictions = iter(classifier.predict([frame.image for frames, _, _ in decoded for frame in frames]))
        for path, (frames, times, error) in zip(chunk, decoded, strict=True):
            results.append(_combine(path, frames, [next(predictions) for _ in frames], error, times))
        if progress is not None:
            progress.update(len(chunk))
    return results


def classify_each(
    classifier: Classifier, paths: Iterable[Path], *, max_frames: int = DEFAULT_MAX_FRAMES
) -> Iterable[FileScore]:
    """Score files one at a time, timing decode + preprocessing + inference for each (all of an
    animated file's scored frames)."""
    for path in paths:
        started = time.perf_counter()
        frames, times, error = _decode(path, classifier.min_decode_side, max_frames)
        predictions = classifier.predict([frame.image for frame in frames]) if frames else []
        result = _combine(path, frames, predictions, error, times)
        yield FileScore(
            result.path,
            result.scores,
            result.error,
            (time.perf_counter() - started) * 1000,
            result.worst_frame,
            result.worst_time,
        )
