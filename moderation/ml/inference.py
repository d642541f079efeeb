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


VIDEO_BATCH = 8  # as the worker: a long video's frames are never all in memory at once


def _is_video(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            return looks_like_video(handle.read(16))
    except OSError:
        return False


def _decode(path: Path, min_side: int, max_frames: int) -> tuple[list[Frame], str]:
    """The frames of an image to score (all of an animation's, up to the cap), or an error."""
    try:
        with Image.open(path) as image:
            frames = list(frames_to_score(image, cap=max_frames, min_side=min_side))
            for frame in frames:
                frame.image.load()  # before the file closes
        return frames, ""
    except Exception as exc:  # any undecodable file is reported, not fatal
        return [], f"cannot decode: {type(exc).__name__}: {exc}"


def _score_video(classifier: Classifier, path: Path) -> FileScore:
    """A video's sampled frames (media.video), scored in batches as they decode."""
    scores: list[dict[str, float]] = []
    times: list[float] = []
    try:
        batch = []
        for sampled in sample_frames(str(path)):
            batch.append(sampled)
            if len(batch) == VIDEO_BATCH:
                scores += classifier.predict([f.image for f in batch])
                times += [f.time for f in batch]
                batch = []
        if batch:
            scores += classifier.predict([f.image for f in batch])
            times += [f.time for f in batch]
    except Exception as exc:  # any undecodable file is reported, not fatal
        return FileScore(path, None, f"cannot decode: {type(exc).__name__}: {exc}")
    if not scores:
        return FileScore(path, None, "cannot decode: the video has no frame")
    return _combine(path, list(range(len(scores))), scores, "", times)


def _combine(
    path: Path, indices: list[int], predictions: list[dict[str, float]], error: str, times: list[float] | None = None
) -> FileScore:
    """One file's result from its frames' predictions (``indices``: the frames' positions in the
    file): the maximum per category, and the worst frame unless it is a still image."""
    if not indices:
        return FileScore(path, None, error)
    if len(indices) == 1 and times is None:
        return FileScore(path, predictions[0])
    scores = {name: max(p[name] for p in predictions) for name in predictions[0]}
    worst = max(range(len(indices)), key=lambda i: max(predictions[i].values()))
    return FileScore(path, scores, worst_frame=indices[worst], worst_time=times[worst] if times else None)


def score_files(
    classifier: Classifier,
    paths: Sequence[Path],
    *,
    batch_size: int = 32,
    progress=None,
    max_frames: int = DEFAULT_MAX_FRAMES,
) -> list[FileScore]:
    """Category scores for every file (the maximum over the frames of an animated one or the
    sampled frames of a video), images in batches of files; files that do not decode get an
    error instead."""
    results: list[FileScore] = []
    for start in range(0, len(paths), batch_size):
        chunk = paths[start : start + batch_size]
        videos = {path: _score_video(classifier, path) for path in chunk if _is_video(path)}
        decoded = {path: _decode(path, classifier.min_decode_side, max_frames) for path in chunk if path not in videos}
        predictions = iter(classifier.predict([frame.image for frames, _ in decoded.values() for frame in frames]))
        for path in chunk:
            if path in videos:
                results.append(videos[path])
            else:
                frames, error = decoded[path]
                indices = [frame.index for frame in frames]
                results.append(_combine(path, indices, [next(predictions) for _ in frames], error))
        if progress is not None:
            progress.update(len(chunk))
    return results


def classify_each(
    classifier: Classifier, paths: Iterable[Path], *, max_frames: int = DEFAULT_MAX_FRAMES
) -> Iterable[FileScore]:
    """Score files one at a time, timing decode + preprocessing + inference for each (all of an
    animated file's scored frames, all of a video's sampled ones)."""
    for path in paths:
        started = time.perf_counter()
        if _is_video(path):
            result = _score_video(classifier, path)
        else:
            frames, error = _decode(path, classifier.min_decode_side, max_frames)
            predictions = classifier.predict([frame.image for frame in frames]) if frames else []
            result = _combine(path, [frame.index for frame in frames], predictions, error)
        yield FileScore(
            result.path,
            result.scores,
            result.error,
            (time.perf_counter() - started) * 1000,
            result.worst_frame,
            result.worst_time,
        )
