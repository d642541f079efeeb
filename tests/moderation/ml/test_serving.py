"""Torch-free serving: the ONNX export and the NumPy preprocessing give the scores torch gives."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from moderation.ml import baseline, finetuned
from moderation.ml.serving import preprocess
from moderation.ml.transforms import Preprocessing, to_batch
from tests.conftest import rewritten_checkpoint
from tests.images import photo

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def photos() -> list[Image.Image]:
    images = [photo(name) for name in ("astronaut", "chelsea", "coffee", "rocket")]
    return [*images, images[1].rotate(90, expand=True), images[2].resize((37, 901))]


@pytest.mark.parametrize(
    ("pre", "max_levels", "mean_levels"),
    [
        (baseline.PREPROCESSING, 1, 0.05),
        (Preprocessing(size=288), 2, 0.05),
        # Squashing upsamples the short side of narrow pictures, where the two differ a little more.
        (Preprocessing(size=288, resize_mode="squash"), 2, 0.25),
    ],
)
def test_numpy_preprocessing_matches_the_torchvision_transform(photos, pre, max_levels, mean_levels):
    expected = to_batch(photos, pre).numpy()
    got = preprocess(photos, pre)
    assert got.shape == expected.shape and got.dtype == np.float32
    # In 8-bit pixel levels: rounding in the resampler moves a few pixels by a level or two.
    levels = np.abs(got - expected) * np.asarray(pre.std, dtype=np.float32).reshape(1, 3, 1, 1) * 255
    assert levels.max() <= max_levels + 1e-3
    assert levels.mean() <= mean_levels


@pytest.fixture(scope="module")
def baseline_export(tmp_path_factory) -> Path:
    return baseline.export_serving(tmp_path_factory.mktemp("serving") / "baseline.onnx")


def test_baseline_scores_the_same_from_onnx(photos, baseline_export):
    torch_scores = baseline.BaselineClassifier(threads=1).predict(photos)
    onnx = baseline.BaselineClassifier(threads=1, serving=baseline_export)
    assert onnx.serving == "onnx"
    for expected, got in zip(torch_scores, onnx.predict(photos), strict=True):
        assert got["nudity"] == expected["nudity"]  # the same ONNX model in both
        assert got["weapon"] == pytest.approx(expected["weapon"], rel=0.05, abs=1e-5)


def test_finetuned_scores_the_same_from_onnx(photos, tiny_checkpoint, tmp_path):
    target = finetuned.export_serving(tiny_checkpoint, tmp_path / "tiny.onnx")
    expected = finetuned.FineTunedClassifier(tiny_checkpoint, nudity=False).harmful_scores(photos)
    served = finetuned.FineTunedClassifier("unused", nudity=False, serving=target)
    assert (served.serving, served.category, served.categories) == ("onnx", "weapon", ("weapon",))
    assert served.harmful_scores(photos) == pytest.approx(expected, abs=0.02)


def test_onnx_serving_never_imports_torch(baseline_export):
    code = (
        "import sys; from pathlib import Path; from PIL import Image; "
        "from moderation.ml.loading import build_classifier; from moderation.ml import baseline; "
        f"c = build_classifier(baseline.ARCHITECTURE, {{}}, serving=Path({str(baseline_export)!r})); "
        "s = c.predict([Image.new('RGB', (640, 480), (90, 120, 200))])[0]; "
        "print(sorted(s), 'torch' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[0] == "['nudity', 'weapon'] False"


def _logit(p):
    p = np.asarray(p, dtype=np.float64)
    return np.log(p / (1 - p))


@pytest.mark.parametrize("flip", [False, True])
def test_calibrated_scores_agree_between_torch_and_onnx(photos, tiny_checkpoint, tmp_path, flip):
    checkpoint = rewritten_checkpoint(tiny_checkpoint, tmp_path / "calibrated.pt", temperature=2.5, flip=flip)
    raw = finetuned.FineTunedClassifier(checkpoint, nudity=False, temperature=1.0, flip=flip).harmful_scores(photos)
    served = finetuned.FineTunedClassifier(checkpoint, nudity=False)
    assert (served.temperature, served.flip) == (2.5, flip)
    calibrated = served.harmful_scores(photos)
    assert _logit(calibrated) == pytest.approx(_logit(raw) / 2.5, abs=1e-4)
    assert max(abs(a - b) for a, b in zip(calibrated, raw, strict=True)) > 0.02  # the temperature matters here

    target = finetuned.export_serving(checkpoint, tmp_path / "calibrated.onnx")
    onnx = finetuned.FineTunedClassifier("unused", nudity=False, serving=target)
    assert (onnx.temperature, onnx.flip) == (2.5, flip)
    assert onnx.harmful_scores(photos) == pytest.approx(calibrated, abs=0.01)


def test_the_flip_averages_the_logits_of_the_image_and_its_mirror(photos, tiny_checkpoint, tmp_path):
    checkpoint = rewritten_checkpoint(tiny_checkpoint, tmp_path / "flip.pt", flip=True)
    plain = finetuned.FineTunedClassifier(checkpoint, nudity=False, flip=False)
    mirrors = [p.transpose(Image.Transpose.FLIP_LEFT_RIGHT) for p in photos]
    expected = (_logit(plain.harmful_scores(photos)) + _logit(plain.harmful_scores(mirrors))) / 2
    flipped = finetuned.FineTunedClassifier(checkpoint, nudity=False)
    assert flipped.flip is True
    assert _logit(flipped.harmful_scores(photos)) == pytest.approx(expected, abs=1e-3)
    assert not np.allclose(expected, _logit(plain.harmful_scores(photos)), atol=1e-3)  # the mirror scores differently


def test_checkpoints_and_exports_from_before_calibration_serve_as_before(photos, tiny_checkpoint, tmp_path):
    import json

    import torch

    from moderation.ml import checkpoints

    old = rewritten_checkpoint(tiny_checkpoint, tmp_path / "old.pt", drop=("temperature", "flip"))
    assert checkpoints.serving_options(checkpoints.read(old)) == {"temperature": 1.0, "flip": False}
    served = finetuned.FineTunedClassifier(old, nudity=False)
    assert (served.temperature, served.flip) == (1.0, False)
    net, meta = checkpoints.load(old)
    with torch.inference_mode():
        eager = torch.sigmoid(net(to_batch(photos, Preprocessing.from_dict(meta["preprocessing"])))).tolist()
    assert served.harmful_scores(photos) == pytest.approx(eager, abs=1e-4)
    # An export written before calibration existed: its description names neither.
    target = finetuned.export_serving(old, tmp_path / "old.onnx")
    description = json.loads(target.with_suffix(".json").read_text())
    assert (description["temperature"], description["flip"]) == (1.0, False)
    for key in ("temperature", "flip"):
        description.pop(key)
    target.with_suffix(".json").write_text(json.dumps(description))
    onnx = finetuned.FineTunedClassifier("unused", nudity=False, serving=target)
    assert (onnx.temperature, onnx.flip) == (1.0, False)
    assert onnx.harmful_scores(photos) == pytest.approx(eager, abs=0.02)


def test_an_onnx_export_refuses_serving_overrides(tiny_checkpoint, tmp_path):
    target = finetuned.export_serving(tiny_checkpoint, tmp_path / "tiny.onnx")
    with pytest.raises(ValueError, match="built in"):
        finetuned.FineTunedClassifier("unused", nudity=False, serving=target, temperature=2.0)
