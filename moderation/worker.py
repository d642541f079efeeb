"""Worker process set-up: a warm model."""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)


def warm_up() -> None:
    """Load the active model (from its ONNX export when there is one: then torch is never
    imported in this process); threads come from VIGIL_TORCH_THREADS."""
    try:
        from moderation.classifiers import classifier_for
        from moderation.services.model_versions import model_version_ensure_active

        classifier_for(model_version_ensure_active())
    except Exception:  # the database may not be migrated yet; the first task will load it
        logger.exception("could not warm the model at worker start")
