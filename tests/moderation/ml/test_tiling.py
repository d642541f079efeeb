"""Tiled scoring (moderation/ml/tiling.py): which frames are tiled, that the tiles cover the frame,
and that a frame's score is the maximum over the frame and its tiles, all in one batch."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from moderation.ml import finetuned
from moderation.ml.tiling import CHOICES, NO_TILING, Tiling, tiled_scores
from moderation.ml.transforms import Preprocessing


def test_choices_parse_and_unknown_ones_are_refused():
    assert [Tiling.parse(name).grid for name in CHOICES] == [1, 2, 3]
    assert Tiling.parse("").name == Tiling.parse(None).name == "none"
    assert Tiling.parse("3X3").name == "3x3"
    with pytest.raises(ValueError, match="tiling must be one of none, 2x2, 3x3"):
        Tiling.parse("4x4")


@pytest.mark.parametrize(("name", "span"), [("none", 1.0), ("2x2", 1.75), ("3x3", 2.5)])
def test_a_tile_sees_the_frame_span_times_larger(name, span):
    tiling = Tiling.parse(name)
    assert tiling.span == span
    # the short side decoded so each tile still has the model's input size
    assert tiling.min_decode_side(288) == int(np.ceil(288 * span))


@pytest.mark.parametrize("name", ["2x2", "3x3"])
@pytest.mark.parametrize("size", [(416, 234), (1155, 866), (301, 977), (433, 289)])
def test_tiles_cover_the_frame_and_overlap_by_a_quarter(name, size):
    tiling = Tiling.parse(name)
    width, height = size
    boxes = tiling.boxes(width, height)
    assert len(boxes) == tiling.grid**2
    covered = np.zeros((height, width), dtype=int)
    for left, top, right, bottom in boxes:
        assert 0 <= left < right <= width and 0 <= top < bottom <= height
        covered[top:bottom, left:right] += 1
    assert covered.min() >= 1  # every pixel is in some tile
    # neighbours along a row share about a quarter of a tile's width
    (l0, _, r0, _), (l1, _, _, _) = boxes[0], boxes[1]
    assert (r0 - l1) / (r0 - l0) == pytest.approx(0.25, abs=0.02)
    # each tile is 1/span of the frame, so the object in it is span times larger once resized
    assert (r0 - l0) / width == pytest.approx(1 / tiling.span, abs=0.01)


@pytest.mark.parametrize(
    ("size", "tiled"),
    [
        ((416, 234), True),  # a CCTV frame: wide
        ((234, 416), True),  # the same, upright
        ((300, 300), False),  # square and about the input size: the whole frame loses little
        ((400, 300), False),  # 4:3, under 1.5x the input
        ((1155, 866), True),  # large: the whole-frame view drops most pixels
        ((200, 100), False),  # wide but smaller than the input: tiles would be upsampled blur
    ],
)
def test_only_wide_or_large_frames_are_tiled(size, tiled):
    assert Tiling.parse("2x2").applies(*size, input_size=288) is tiled
    assert NO_TILING.applies(*size, input_size=288) is False
    assert len(Tiling.parse("3x3").views(Image.new("RGB", size), 288)) == (10 if tiled else 1)


def small_bright_object(size=(416, 234), box=(330, 150, 342, 162)) -> Image.Image:
    """A black wide frame with a 12x12 white square in its lower right part."""
    image = Image.new("RGB", size)
    ImageDraw.Draw(image).rectangle(box, fill=(255, 255, 255))
    return image


def brightness_score(views: list[Image.Image]) -> list[float]:
    """A stand-in network: the mean brightness of a view resized to the input size, on a black
    frame the share of it the object fills, so it scores higher where the object looks larger."""
    return [float(np.asarray(v.resize((96, 96), Image.Resampling.BOX).convert("L")).mean() / 255) for v in views]


@pytest.mark.parametrize("name", ["2x2", "3x3"])
def test_a_small_object_scores_higher_in_a_tile_and_the_frame_takes_the_maximum(name):
    frame = small_bright_object()
    calls = []

    def network(views):
        calls.append(len(views))
        return brightness_score(views)

    whole = brightness_score([frame])[0]
    tiling = Tiling.parse(name)
    [score] = tiled_scores([frame], tiling, 96, network)
    assert calls == [1 + tiling.grid**2]  # the frame and its tiles in one batch
    views = tiling.views(frame, 96)
    assert score == max(brightness_score(views))
    assert score > 2.5 * whole  # the object fills span² times more of a tile than of the frame
    # the best tile is one that holds the object
    left, top, right, bottom = tiling.boxes(*frame.size)[int(np.argmax(brightness_score(views[1:])))]
    assert left <= 330 and right >= 342 and top <= 150 and bottom >= 162


def test_several_frames_are_one_batch_and_keep_their_order():
    frames = [small_bright_object(), Image.new("RGB", (300, 300)), small_bright_object((234, 416), (10, 10, 22, 22))]
    calls = []

    def network(views):
        calls.append(len(views))
        return brightness_score(views)

    scores = tiled_scores(frames, Tiling.parse("2x2"), 288, network)
    assert calls == [5 + 1 + 5]
    assert scores[1] == 0.0  # the square black frame is scored whole, and has nothing bright
    assert scores[0] > 0 and scores[2] > 0
    assert tiled_scores(frames, NO_TILING, 288, brightness_score) == brightness_score(frames)


def test_a_network_that_drops_views_is_an_error():
    with pytest.raises(ValueError, match="5 views got 1 scores"):
        tiled_scores([small_bright_object()], Tiling.parse("2x2"), 96, lambda views: [0.0])


@pytest.mark.slow
@pytest.mark.parametrize("name", ["2x2", "3x3"])
def test_torch_and_onnx_serving_tile_alike(tiny_checkpoint, tmp_path, name):
    """The fine-tuned classifier tiles in both serving paths and they agree; its score is the
    maximum over the whole frame (the untiled score) and the tiles."""
    from tests.images import photo

    frames = [photo("coffee").resize((600, 300)), small_bright_object(), photo("chelsea").resize((160, 120))]
    tiling = Tiling.parse(name)
    target = finetuned.export_serving(tiny_checkpoint, tmp_path / "tiny.onnx")
    torch_tiled = finetuned.FineTunedClassifier(tiny_checkpoint, nudity=False, tiling=tiling)
    onnx_tiled = finetuned.FineTunedClassifier("unused", nudity=False, serving=target, tiling=tiling)
    onnx_whole = finetuned.FineTunedClassifier("unused", nudity=False, serving=target)
    expected = torch_tiled.harmful_scores(frames)
    got = onnx_tiled.harmful_scores(frames)
    assert got == pytest.approx(expected, abs=0.02)
    size = Preprocessing.from_dict(onnx_tiled._onnx.description["preprocessing"]).size
    per_view = [onnx_whole.harmful_scores(tiling.views(frame, size)) for frame in frames]
    assert got == pytest.approx([max(views) for views in per_view], abs=1e-6)
    assert [len(v) for v in per_view] == [1 + tiling.grid**2, 1 + tiling.grid**2, 1]
    assert got[2] == pytest.approx(onnx_whole.harmful_scores(frames[2:])[0], abs=1e-6)  # small: not tiled
    # frames are decoded large enough for the tiles to keep the model's resolution
    assert onnx_tiled.min_decode_side == tiling.min_decode_side(size) > size


@pytest.mark.slow
def test_the_baseline_tiles_its_weapon_score_and_not_nudity():
    from moderation.ml import baseline
    from tests.images import photo

    wide = photo("coffee").resize((700, 300))
    tiled = baseline.BaselineClassifier(threads=1, tiling=Tiling.parse("2x2"))
    [scores] = tiled.predict([wide])
    whole = baseline.BaselineClassifier(threads=1)
    [plain] = whole.predict([wide])
    views = Tiling.parse("2x2").views(wide, baseline.PREPROCESSING.size)
    assert len(views) == 5
    assert scores["weapon"] == pytest.approx(max(whole.weapon_scores(views)), abs=1e-6)
    assert scores["weapon"] >= plain["weapon"] - 1e-6
    assert scores["nudity"] == plain["nudity"]  # open_nsfw sees the whole frame only
    assert tiled.min_decode_side == Tiling.parse("2x2").min_decode_side(baseline.PREPROCESSING.resize_to)
