"""One loaded classifier per worker process, keyed by model version.

Loading a model takes seconds; each worker process keeps the one it last used. A new active
version is loaded on first use and the least recently used one dropped (two stay loaded: the
active model and a shadow candidate), so workers switch without a restart.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from pathlib import Path

from django.conf import settings

from moderation.ml.loading import FINETUNED_ARCHITECTURE, Classifier, build_classifier
from moderation.ml.serving import serving_paths
from moderation.models import ModelVersion
from moderation.worker import intra_op_threads

logger = logging.getLogger(__name__)


class ModelIntegrityError(RuntimeError):
    """A registered weights file is missing or no longer matches the sha256 it was registered with."""


_lock = threading.Lock()
# The active version and, in shadow mode, the candidate beside it; the least recently used goes.
_loaded: OrderedDict[tuple[str, str, str, str], Classifier] = OrderedDict()
MAX_LOADED = 2


def classifier_for(model_version: ModelVersion) -> Classifier:
    # Keyed by what determines the loaded model, not by row id: re-registering identical
    # weights does not reload them; switching the version's tiling does (on the next task).
    key = (
        model_version.architecture,
        model_version.weights_sha256,
        json.dumps(model_version.config, sort_keys=True),
        model_version.tiling,
    )
    with _lock:
        classifier = _loaded.get(key)
        if classifier is not None:
            _loaded.move_to_end(key)
        else:
            classifier = load_classifier(model_version, threads=intra_op_threads())
            while len(_loaded) >= MAX_LOADED:
                _loaded.popitem(last=False)
            _loaded[key] = classifier
        return classifier


def load_classifier(model_version: ModelVersion, *, threads: int | None = None) -> Classifier:
    """Check the version's files and load it, outside the per-process cache (benchmarks load two
    versions with their own thread count). Served from its ONNX export when there is one; a
    quantized version only from its int8 files (checked by :func:`_check_weights`)."""
    _check_weights(model_version)
    onnx_file, _ = serving_paths(settings.VIGIL_MODEL_DIR, model_version.weights_sha256)
    serving = onnx_file if onnx_file.is_file() else None
    quantized = quantization_of(model_version)
    open_nsfw = None
    if quantized is not None and quantized.get("open_nsfw"):
        from moderation.ml.quantize import open_nsfw_path

        open_nsfw = open_nsfw_path(settings.VIGIL_MODEL_DIR, model_version.weights_sha256)
    logger.info(
        "loading model version %s (%s, tiling %s) with %s",
        model_version.name,
        model_version.architecture,
        model_version.tiling,
        ("ONNX Runtime, int8" if quantized else "ONNX Runtime")
        if serving
        else "torch: no ONNX export yet (manage.py export_serving)",
    )
    if serving is None and threads:
        import torch

        torch.set_num_threads(threads)
    return classifier_build(model_version, serving=serving, open_nsfw=open_nsfw, threads=threads)


def classifier_build(
    model_version: ModelVersion, *, serving: Path | None, open_nsfw: Path | None = None, threads: int | None = None
) -> Classifier:
    """The version's classifier from the network files given (``serving``: its ONNX export, None
    for torch; ``open_nsfw``: an int8 open_nsfw), unchecked and uncached: :func:`load_classifier`
    checks a registered version's files first; quantization builds from files not yet registered."""
    return build_classifier(
        model_version.architecture,
        model_version.config,
        weights=model_version.weights,
        threads=threads,
        serving=serving,
        tiling=model_version.tiling,
        open_nsfw=open_nsfw,
    )


def quantization_of(model_version: ModelVersion) -> dict | None:
    """What a quantized version records about its quantization (``config["quantized"]``), or None
    for a version served as it was trained."""
    quantized = (model_version.config or {}).get("quantized")
    return quantized if isinstance(quantized, dict) else None


def _check_weights(model_version: ModelVersion) -> None:
    from moderation.ml.files import file_sha256

    quantized = quantization_of(model_version)
    if quantized is not None:
        _check_quantized(model_version, quantized)
        return
    if model_version.architecture != FINETUNED_ARCHITECTURE:
        return  # packaged weights (the baseline) are pinned by requirements.txt
    path = Path(model_version.weights)
    if not path.is_file():
        raise ModelIntegrityError(f"weights of model version {model_version.name} are missing: {path}")
    if file_sha256(path) != model_version.weights_sha256:
        raise ModelIntegrityError(f"weights of model version {model_version.name} changed since registration: {path}")


def _check_quantized(model_version: ModelVersion, quantized: dict) -> None:
    """A quantized version is its int8 files and nothing else: each must be there and together
    match the digest it was registered with. Never falls back to the fp32 source or to torch."""
    from moderation.ml.quantize import files_sha256, quantized_files

    files = quantized_files(
        settings.VIGIL_MODEL_DIR, model_version.weights_sha256, open_nsfw=bool(quantized.get("open_nsfw"))
    )
    missing = [str(path) for path in files if not path.is_file()]
    if missing:
        raise ModelIntegrityError(
            f"quantized files of model version {model_version.name} are missing: {', '.join(missing)} "
            "(manage.py quantize_model on its source writes them again)"
        )
    if files_sha256(files) != model_version.weights_sha256:
        raise ModelIntegrityError(
            f"quantized files of model version {model_version.name} changed since registration: "
            f"{', '.join(str(path) for path in files)}"
        )


def unload_all() -> None:
    """Drop the loaded classifier; the next :func:`classifier_for` loads (and checks) it again."""
    with _lock:
        _loaded.clear()
