"""The frames of an image that get scored: every frame up to a cap, sampled evenly beyond it.

An animated GIF, WebP or PNG can hide a harmful picture in any frame, so the first frame alone
is not enough. Each frame is composited the way a viewer shows it: Pillow applies the format's
disposal and blending when it seeks, and the frame is then turned upright and flattened to RGB
like a still image (:func:`media.images.load_rgb`). A still image is one frame, decoded
exactly as before, draft decoding of large JPEGs included.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from PIL import Image

from media.images import load_rgb


@dataclass(frozen=True)
class Frame:
    """One decoded frame: its index in the file (0-based) and the upright RGB picture."""

    index: int
    image: Image.Image


def frame_count(image: Image.Image) -> int:
    """How many frames the opened image has (1 for a still image)."""
    return max(1, getattr(image, "n_frames", 1))


def sample_indices(total: int, cap: int) -> list[int]:
    """The frame indices to score: all of them up to ``cap``, else ``cap`` evenly spaced ones,
    always the first and the last."""
    if total < 1 or cap < 1:
        raise ValueError(f"need at least one frame and a cap of at least one (got {total}, {cap})")
    if total <= cap:
        return list(range(total))
    if cap == 1:
        return [0]
    # total > cap, so consecutive picks differ by more than 1 and never collide.
    return [round(step * (total - 1) / (cap - 1)) for step in range(cap)]


def frames_to_score(image: Image.Image, *, cap: int, min_side: int | None = None) -> Iterator[Frame]:
    """Yield the frames :func:`sample_indices` picks from ``image`` (opened, not yet loaded), in
    order, one at a time, so a caller that scores in batches holds only a batch in memory.

    ``min_side`` is passed to :func:`load_rgb` for a still image (draft decoding of JPEGs)."""
    total = frame_count(image)
    if total == 1:
        yield Frame(0, load_rgb(image, min_side=min_side))
        return
    for index in sample_indices(total, cap):
        yield Frame(index, frame_at(image, index))


def frame_at(image: Image.Image, index: int) -> Image.Image:
    """Frame ``index`` of the opened ``image`` as upright RGB. Raises ``IndexError`` when the
    image has no such frame."""
    if not 0 <= index < frame_count(image):
        raise IndexError(f"frame {index} is out of range (the image has {frame_count(image)})")
    if frame_count(image) > 1:
        image.seek(index)  # Pillow composites the frame (disposal, blending) as it seeks
    return load_rgb(image)  # a new picture: seeking further does not change it


def batched(frames: Iterable[Frame], size: int) -> Iterator[list[Frame]]:
    """Consecutive lists of at most ``size`` frames (``itertools.batched`` arrives in 3.12)."""
    batch: list[Frame] = []
    for frame in frames:
        batch.append(frame)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
