"""Tiled scoring: a small object in a wide frame seen larger, in overlapping tiles.

A model squashes (or crops) the whole frame to its input size, so a pistol a few dozen pixels
wide in a 416x234 CCTV frame is a smudge among the pooled features. With tiling the network
also sees an ``n x n`` grid of overlapping tiles of the frame (each resized to the input size
by the model's own preprocessing, so the object is ``n - (n - 1) * overlap`` times larger), and
the frame's score is the maximum over the whole frame and its tiles: any view that shows the
object flags the frame.

Plain Pillow, no torch and no Django: the torch and the ONNX Runtime paths make the same views,
then each prepares them as it prepares any picture. Which tiling a model version uses is stored
with the version (``ModelVersion.tiling``); ``none`` scores the whole frame only, as before.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL import Image

NONE = "none"
GRIDS = {NONE: 1, "2x2": 2, "3x3": 3}
CHOICES = tuple(GRIDS)
OVERLAP = 0.25  # each tile shares a quarter of its width (height) with its neighbour
# Which frames are tiled: at least the input size along the long side (a smaller picture's tiles
# would only be upsampled blur), and wide (long side >= 1.5x the short: squashing distorts it and
# the object is small across) or large (long side >= 1.5x the input: the whole-frame view
# throws most of its pixels away). Smaller or squarish frames are scored whole, at no extra cost.
WIDE_ASPECT = 1.5
LARGE_FACTOR = 1.5


@dataclass(frozen=True)
class Tiling:
    grid: int = 1  # tiles per side; 1 is no tiling
    overlap: float = OVERLAP

    def __post_init__(self) -> None:
        if self.grid < 1 or not 0 <= self.overlap < 1:
            raise ValueError(f"a tiling needs grid >= 1 and 0 <= overlap < 1, not {self.grid}, {self.overlap}")

    @classmethod
    def parse(cls, name: str | None) -> Tiling:
        """``"none"`` (or empty), ``"2x2"`` or ``"3x3"``."""
        name = (name or NONE).strip().lower()
        if name not in GRIDS:
            raise ValueError(f"tiling must be one of {', '.join(CHOICES)}, not {name!r}")
        return cls(grid=GRIDS[name])

    @property
    def name(self) -> str:
        return NONE if self.grid == 1 else f"{self.grid}x{self.grid}"

    @property
    def enabled(self) -> bool:
        return self.grid > 1

    @property
    def span(self) -> float:
        """How many tile widths the frame is across (1.75 for 2x2, 2.5 for 3x3 at 25% overlap):
        the magnification a tile gets over the whole-frame view."""
        return self.grid - (self.grid - 1) * self.overlap

    def min_decode_side(self, short_side: int) -> int:
        """The short side a frame needs decoded so each tile still has ``short_side`` pixels
        (JPEG draft decoding stops at a smaller scale otherwise)."""
        return math.ceil(short_side * self.span) if self.enabled else short_side

    def applies(self, width: int, height: int, input_size: int) -> bool:
        """Whether a ``width x height`` frame is tiled for a model of ``input_size`` pixels."""
        if not self.enabled:
            return False
        long, short = max(width, height), max(min(width, height), 1)
        if long < input_size:
            return False
        return long / short >= WIDE_ASPECT or long >= LARGE_FACTOR * input_size

    def boxes(self, width: int, height: int) -> list[tuple[int, int, int, int]]:
        """The tiles' (left, top, right, bottom), row by row: ``grid`` per side, each
        ``1 / span`` of the frame's side, evenly spaced so the first starts at 0 and the last
        ends at the edge (together they cover the frame)."""
        tile_w, tile_h = _tile_side(width, self.span), _tile_side(height, self.span)
        lefts = _starts(width, tile_w, self.grid)
        tops = _starts(height, tile_h, self.grid)
        return [(left, top, left + tile_w, top + tile_h) for top in tops for left in lefts]

    def views(self, image: Image.Image, input_size: int) -> list[Image.Image]:
        """The frame itself, then its tiles when it is tiled."""
        if not self.applies(image.width, image.height, input_size):
            return [image]
        return [image, *(image.crop(box) for box in self.boxes(image.width, image.height))]


NO_TILING = Tiling()


def _tile_side(side: int, span: float) -> int:
    return max(1, min(side, math.ceil(side / span)))


def _starts(side: int, tile: int, grid: int) -> list[int]:
    if grid == 1:
        return [0]
    step = (side - tile) / (grid - 1)
    return [round(i * step) for i in range(grid)]


def tiled_scores(
    images: Sequence[Image.Image],
    tiling: Tiling,
    input_size: int,
    score: Callable[[list[Image.Image]], Sequence[float]],
) -> list[float]:
    """One score per image: the maximum of ``score`` over the image and its tiles. Every view of
    every image goes through ``score`` in one call (one batch through the network)."""
    views: list[Image.Image] = []
    counts: list[int] = []
    for image in images:
        mine = tiling.views(image, input_size)
        views += mine
        counts.append(len(mine))
    scores = list(score(views))
    if len(scores) != len(views):
        raise ValueError(f"{len(views)} views got {len(scores)} scores")
    result, start = [], 0
    for count in counts:
        result.append(max(scores[start : start + count]))
        start += count
    return result
