"""The ``--model NAME`` / ``--checkpoint PATH`` options shared by ``evaluate`` and ``classify``."""

from __future__ import annotations

import argparse

from django.core.management.base import CommandError

from moderation.ml.loading import Classifier


def add_model_arguments(parser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--model", help="registered model version name (default: the active one)")
    group.add_argument("--checkpoint", help="an unregistered fine-tuned checkpoint (model.pt from `train`)")


def add_serving_overrides(parser) -> None:
    """Options that serve a ``--checkpoint`` differently from what it says, to measure the effect."""
    parser.add_argument(
        "--temperature",
        type=float,
        help="with --checkpoint: divide logits by this instead of the checkpoint's calibration (1: uncalibrated)",
    )
    parser.add_argument(
        "--flip",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="with --checkpoint: average each image's logit with its mirror's, or not (default: the checkpoint's)",
    )


def load_classifier(
    *, model: str | None, checkpoint: str | None, temperature: float | None = None, flip: bool | None = None
) -> tuple[str, Classifier]:
    """(a name to show, the loaded classifier) for the options given. ``temperature`` and
    ``flip`` override a checkpoint's serving options (refused for a registered version)."""
    if (temperature is not None or flip is not None) and not checkpoint:
        raise CommandError("--temperature and --flip apply to a --checkpoint only")
    if temperature is not None and not temperature > 0:
        raise CommandError("--temperature must be positive")
    from moderation.classifiers import ModelIntegrityError, classifier_for
    from moderation.ml.backbones import WeightsUnavailable
    from moderation.ml.checkpoints import CheckpointError
    from moderation.services.model_versions import RegistryError, model_version_ensure_active, model_version_get

    try:
        if checkpoint:
            from moderation.ml.finetuned import FineTunedClassifier

            return checkpoint, FineTunedClassifier(checkpoint, temperature=temperature, flip=flip)
        version = model_version_get(name=model) if model else model_version_ensure_active()
        return version.name, classifier_for(version)
    except (RegistryError, CheckpointError, ModelIntegrityError, WeightsUnavailable) as exc:
        raise CommandError(str(exc)) from None


def suggested_thresholds(*, model: str | None, classifier: Classifier) -> dict | None:
    """The thresholds a model suggested on its validation data: a registered version's (the
    active one by default), or an unregistered checkpoint's own."""
    from moderation.services.model_versions import model_version_ensure_active, model_version_get

    meta = getattr(classifier, "meta", None)
    if model is None and meta is not None:  # --checkpoint
        return (meta.get("metrics") or {}).get("suggested_thresholds")
    version = model_version_get(name=model) if model else model_version_ensure_active()
    return (version.metrics or {}).get("suggested_thresholds")
