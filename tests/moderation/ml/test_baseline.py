"""The baseline classifier on real photos (scikit-image's), and the loading checks."""

import hashlib
from collections import OrderedDict

import pytest
import torch

from moderation.ml.backbones import efficientnet_lite0, load_state_dict_by_position
from moderation.ml.baseline import CATEGORIES, BaselineClassifier, weights_files, weights_sha256
from tests.images import photo

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def classifier():
    return BaselineClassifier(threads=1)


@pytest.mark.parametrize("name", ["astronaut", "chelsea", "coffee", "motorcycle", "rocket"])
def test_everyday_photos_score_low(classifier, name):
    scores = classifier.predict([photo(name)])[0]
    assert set(scores) == set(CATEGORIES)
    assert scores["weapon"] < 0.05, scores
    assert scores["nudity"] < 0.2, scores


def test_pretrained_backbone_recognises_a_cat(classifier):
    from moderation.ml.baseline import PREPROCESSING
    from moderation.ml.transforms import to_batch

    model = efficientnet_lite0().eval()
    with torch.inference_mode():
        top = model(to_batch([photo("chelsea")], PREPROCESSING)).argmax(1).item()
    assert 281 <= top <= 293  # ImageNet's domestic and wild cats


def test_batch_prediction_matches_single(classifier):
    images = [photo("chelsea"), photo("coffee")]
    batch = classifier.predict(images)
    single = [classifier.predict([image])[0] for image in images]
    for b, s in zip(batch, single, strict=True):
        assert b == pytest.approx(s, abs=1e-4)


def test_weights_digest_covers_both_weight_files_in_order():
    files = weights_files()
    assert [f.suffix for f in files] == [".pth", ".onnx"]
    expected = hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()
    assert weights_sha256() == expected


def test_state_dict_shape_mismatch_is_refused():
    model = torch.nn.Sequential(torch.nn.Linear(2, 3))
    with pytest.raises(ValueError, match="does not fit"):
        load_state_dict_by_position(model, OrderedDict(w=torch.zeros(3, 3), b=torch.zeros(3)))
    with pytest.raises(ValueError, match="expects 2"):
        load_state_dict_by_position(model, OrderedDict(w=torch.zeros(3, 2)))
