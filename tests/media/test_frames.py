"""Which frames get scored, and that each is the composited picture a viewer sees."""

from __future__ import annotations

import io
import itertools

import pytest
from PIL import Image

from media.frames import batched, frame_at, frames_to_score, sample_indices
from media.images import load_rgb
from tests.images import animated, encode, photo_jpeg

COLOURS = [(255, 0, 0), (0, 200, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255), (255, 0, 255), (90, 90, 90)]


def _open(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


def _close(pixel: tuple[int, ...], colour: tuple[int, int, int], tolerance: int = 12) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, colour, strict=True))


@pytest.mark.parametrize(("total", "cap"), [(1, 32), (5, 32), (32, 32), (7, 7)])
def test_every_frame_up_to_the_cap(total, cap):
    assert sample_indices(total, cap) == list(range(total))


@pytest.mark.parametrize(("total", "cap"), [(33, 32), (100, 32), (100, 2), (10, 4), (1000, 7)])
def test_beyond_the_cap_frames_are_evenly_spaced_from_first_to_last(total, cap):
    indices = sample_indices(total, cap)
    assert len(indices) == cap == len(set(indices))
    assert indices[0] == 0 and indices[-1] == total - 1
    assert indices == sorted(indices)
    gaps = [b - a for a, b in itertools.pairwise(indices)]
    assert max(gaps) - min(gaps) <= 1  # even, to the rounding


def test_a_cap_of_one_scores_the_first_frame():
    assert sample_indices(50, 1) == [0]


@pytest.mark.parametrize(("total", "cap"), [(0, 3), (3, 0)])
def test_nonsense_is_refused(total, cap):
    with pytest.raises(ValueError):
        sample_indices(total, cap)


def test_a_still_image_is_one_frame_decoded_as_before_with_draft_decoding():
    data = photo_jpeg("coffee")  # 600×400
    frames = list(frames_to_score(_open(data), cap=32, min_side=100))
    assert [frame.index for frame in frames] == [0]
    expected = load_rgb(_open(data), min_side=100)
    assert frames[0].image.size == expected.size == (150, 100)  # libjpeg decoded at 1/4 scale
    assert frames[0].image.tobytes() == expected.tobytes()


@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "PNG"])
def test_every_frame_of_an_animation_in_order_with_its_index(fmt):
    data = animated([Image.new("RGB", (40, 30), colour) for colour in COLOURS[:4]], fmt)
    frames = list(frames_to_score(_open(data), cap=32))
    assert [frame.index for frame in frames] == [0, 1, 2, 3]
    for frame, colour in zip(frames, COLOURS, strict=False):
        assert frame.image.mode == "RGB" and frame.image.size == (40, 30)
        assert _close(frame.image.getpixel((20, 15)), colour)


@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "PNG"])
def test_beyond_the_cap_the_sampled_frames_are_the_ones_decoded(fmt):
    data = animated([Image.new("RGB", (20, 20), colour) for colour in COLOURS], fmt)
    frames = list(frames_to_score(_open(data), cap=3))
    assert [frame.index for frame in frames] == [0, 3, 6]
    for frame in frames:
        assert _close(frame.image.getpixel((10, 10)), COLOURS[frame.index])


@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "PNG"])
def test_a_frame_that_changes_a_corner_is_composited_over_the_previous_one(fmt):
    """The encoders store frame 1 as a small patch; the frame scored is the whole picture."""
    base = Image.new("RGB", (64, 64), (255, 0, 0))
    patched = base.copy()
    patched.paste((0, 0, 255), (0, 0, 8, 8))
    data = animated([base, patched], fmt)
    if fmt != "WEBP":  # libwebp's decoder composites before Pillow sees the frame
        with _open(data) as image:
            image.seek(1)
            assert image.tile[0][1] == (0, 0, 8, 8)  # only the patch is stored
    second = frame_at(_open(data), 1)
    assert second.size == (64, 64)
    assert _close(second.getpixel((2, 2)), (0, 0, 255)) and _close(second.getpixel((40, 40)), (255, 0, 0))


def test_transparent_gif_frames_are_flattened_onto_white():
    frames = []
    for colour in COLOURS[:2]:
        rgba = Image.new("RGBA", (20, 20), (0, 0, 0, 0))
        rgba.paste((*colour, 255), (5, 5, 15, 15))
        frames.append(rgba)
    data = animated(frames, "GIF", disposal=2)
    second = frame_at(_open(data), 1)
    assert _close(second.getpixel((0, 0)), (255, 255, 255)) and _close(second.getpixel((10, 10)), COLOURS[1])


def test_a_frame_out_of_range_is_an_index_error():
    data = animated([Image.new("RGB", (8, 8), colour) for colour in COLOURS[:3]])
    with pytest.raises(IndexError):
        frame_at(_open(data), 3)
    with pytest.raises(IndexError):
        frame_at(_open(encode(Image.new("RGB", (8, 8)), "PNG")), 1)
    assert frame_at(_open(encode(Image.new("RGB", (8, 8)), "PNG")), 0).size == (8, 8)


def test_batches_keep_order_and_the_last_is_short():
    assert [len(batch) for batch in batched(range(19), 8)] == [8, 8, 3]
    assert [item for batch in batched(range(19), 8) for item in batch] == list(range(19))
    assert list(batched([], 8)) == []
