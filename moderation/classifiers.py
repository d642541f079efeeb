"""One loaded classifier per worker process, keyed by model version.

Loading a model takes seconds; each worker process keeps the one it last used. A new active
version is loaded on first use and the old one dropped, so workers switch without a restart.
"""

from __future__ import annotations

import json
import logging
import threading

from django.conf import settings

from moderation.ml.loading import Classifier, build_classifier
from moderation.models import ModelVersion

logger = logging.getLogger(__name__)
_lock = threading.Lock()
_loaded: dict[tuple[str, str, str], Classifier] = {}


def classifier_for(model_version: ModelVersion) -> Classifier:
    # Keyed by what determines the loaded model, not by row id: re-registering identical
    # weights does not reload them.
    key = (model_version.architecture, model_version.weights_sha256, json.dumps(model_version.config, sort_keys=True))
    with _lock:
        classifier = _loaded.get(key)
        if classifier is None:
            threads = settings.VIGIL_TORCH_THREADS or None
            logger.info("loading model version %s (%s)", model_version.name, model_version.architecture)
            classifier = build_classifier(model_version.architecture, model_version.config, threads=threads)
            _loaded.clear()
            _loaded[key] = classifier
        return classifier
