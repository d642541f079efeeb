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
            threads = settings.VIGIL_TORCH_THREADS or None
            _check_weights(model_version)
            onnx_file, _ = serving_paths(settings.VIGIL_MODEL_DIR, model_version.weights_sha256)
            serving = onnx_file if onnx_file.is_file() else None
            logger.info(
                "loading model version %s (%s, tiling %s) with %s",
                model_version.name,
                model_version.architecture,
                model_version.tiling,
                "ONNX Runtime" if serving else "torch: no ONNX export yet (manage.py export_serving)",
            )
            if serving is None and threads:
                import torch

                torch.set_num_threads(threads)
            classifier = build_classifier(
                model_version.architecture,
                model_version.config,
                weights=model_version.weights,
                threads=threads,
                serving=serving,
                tiling=model_version.tiling,
            )
            while len(_loaded) >= MAX_LOADED:
                _loaded.popitem(last=False)
            _loaded[key] = classifier
        return classifier


def _check_weights(model_version: ModelVersion) -> None:
    from moderation.ml.files import file_sha256

    if model_version.architecture != FINETUNED_ARCHITECTURE:
        return  # packaged weights (the baseline) are pinned by requirements.txt
    path = Path(model_version.weights)
    if not path.is_file():
        raise ModelIntegrityError(f"weights of model version {model_version.name} are missing: {path}")
    if file_sha256(path) != model_version.weights_sha256:
        raise ModelIntegrityError(f"weights of model version {model_version.name} changed since registration: {path}")


def unload_all() -> None:
    """Drop the loaded classifier; the next :func:`classifier_for` loads (and checks) it again."""
    with _lock:
        _loaded.clear()
