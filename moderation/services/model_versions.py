"""The model registry: which model version routes traffic."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from moderation.models import ModelVersion

BASELINE_NAME = "baseline-imagenet-nsfw-v1"


class NoActiveModel(RuntimeError):
    pass


def model_version_register_baseline() -> ModelVersion:
    """Register the offline baseline (see moderation/ml/baseline.py); idempotent."""
    from moderation.ml import baseline

    version, _ = ModelVersion.objects.get_or_create(
        name=BASELINE_NAME,
        defaults={
            "architecture": baseline.ARCHITECTURE,
            "weights": " + ".join(str(p) for p in baseline.weights_files()),
            "weights_sha256": baseline.weights_sha256(),
            "preprocessing": baseline.PREPROCESSING.as_dict(),
            "categories": list(baseline.CATEGORIES),
            "config": {"weapon_classes": {str(k): v for k, v in baseline.WEAPON_CLASSES.items()}},
            "notes": "Zero-shot EfficientNet-Lite0 ImageNet weapon prior + open_nsfw. No training.",
        },
    )
    return version


def model_version_activate(*, model_version: ModelVersion) -> ModelVersion:
    """Make ``model_version`` the one that routes traffic; the previous one is retired."""
    with transaction.atomic():
        ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).exclude(pk=model_version.pk).update(
            status=ModelVersion.Status.RETIRED
        )
        ModelVersion.objects.filter(pk=model_version.pk).update(
            status=ModelVersion.Status.ACTIVE, activated_at=timezone.now()
        )
    model_version.refresh_from_db()
    return model_version


def model_version_ensure_active() -> ModelVersion:
    """The active model version; on a fresh install the baseline is registered and activated."""
    active = ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).first()
    if active is not None:
        return active
    return model_version_activate(model_version=model_version_register_baseline())
