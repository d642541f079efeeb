"""The model registry: register trained checkpoints, choose which version routes traffic, roll back.

Registered weights are copied into ``VIGIL_MODEL_DIR`` under their sha256, so the registry does
not depend on a training folder that may be cleaned up, and a file that changes afterwards is
detected when a worker loads it. Workers load the active version on their next task: activating
or rolling back needs no restart.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from moderation.ml.files import atomic_write, file_sha256
from moderation.models import ModelEvent, ModelVersion

logger = logging.getLogger(__name__)

BASELINE_NAME = "baseline-imagenet-nsfw-v1"


class NoActiveModel(RuntimeError):
    pass


class RegistryError(ValueError):
    """A registry request that cannot be carried out; the message says why."""


def model_event_record(
    *, model_version: ModelVersion, action: str, actor: AbstractBaseUser | None = None, note: str = ""
) -> ModelEvent:
    return ModelEvent.objects.create(model_version=model_version, action=action, actor=actor, note=note)


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
            "metrics": {"suggested_thresholds": baseline.COLD_START_THRESHOLDS},
            "notes": "Zero-shot EfficientNet-Lite0 ImageNet weapon prior + open_nsfw. No training.",
        },
    )
    return version


def model_version_export_serving(*, model_version: ModelVersion) -> Path:
    """Write the version's ONNX export, which lets workers serve it without torch, unless it is
    there already (it is keyed by the weights' sha256). Imports torch: called where torch is loaded
    anyway (registering a checkpoint, ``bootstrap_demo``, ``manage.py export_serving``), never on
    the web path or in a scoring worker."""
    from moderation.ml import baseline
    from moderation.ml.loading import FINETUNED_ARCHITECTURE
    from moderation.ml.serving import serving_paths

    onnx_file, description = serving_paths(settings.VIGIL_MODEL_DIR, model_version.weights_sha256)
    if onnx_file.is_file() and description.is_file():
        return onnx_file
    if model_version.architecture == baseline.ARCHITECTURE:
        return baseline.export_serving(onnx_file)
    if model_version.architecture == FINETUNED_ARCHITECTURE:
        from moderation.ml.finetuned import export_serving

        return export_serving(model_version.weights, onnx_file)
    raise RegistryError(f"no ONNX export is known for architecture {model_version.architecture!r}")


def _copy_into_registry(source: Path, sha256: str) -> Path:
    target = Path(settings.VIGIL_MODEL_DIR) / f"{sha256}.pt"
    if not target.exists():
        with source.open("rb") as original, atomic_write(target) as copy:
            shutil.copyfileobj(original, copy)
    return target


def model_version_register(
    *, checkpoint: str | Path, name: str = "", notes: str = "", nudity: bool = True
) -> ModelVersion:
    """Register a fine-tuned checkpoint (from ``train``) as a candidate model version.

    ``nudity``: also score nudity with open_nsfw, as the baseline does, so a fine-tuned weapon
    model does not drop a category the thresholds route on.
    """
    from moderation.ml import checkpoints
    from moderation.ml.finetuned import NUDITY

    source = Path(checkpoint)
    try:
        meta = checkpoints.read(source)
    except checkpoints.CheckpointError as exc:
        raise RegistryError(str(exc)) from None
    sha256 = file_sha256(source)
    existing = ModelVersion.objects.filter(weights_sha256=sha256).first()
    if existing is not None:
        raise RegistryError(f"these weights are already registered as {existing.name!r}")
    name = name.strip() or f"{meta['backbone']}-{meta['category']}-{sha256[:8]}"
    if ModelVersion.objects.filter(name=name).exists():
        raise RegistryError(f"a model version named {name!r} already exists")
    stored = _copy_into_registry(source, sha256)
    categories = [meta["category"]] + ([NUDITY] if nudity and meta["category"] != NUDITY else [])
    version = ModelVersion.objects.create(
        name=name,
        architecture=checkpoints.ARCHITECTURE,
        weights=str(stored),
        weights_sha256=sha256,
        preprocessing=meta["preprocessing"],
        categories=categories,
        config={
            "backbone": meta["backbone"],
            "unfreeze": meta["unfreeze"],
            "category": meta["category"],
            "nudity": nudity,
            "train": meta["config"],
        },
        metrics=meta["metrics"],
        notes=notes,
    )
    model_event_record(model_version=version, action=ModelEvent.Action.REGISTERED, note=notes)
    try:
        model_version_export_serving(model_version=version)
    except Exception:  # registered all the same: workers serve it with torch until export_serving runs
        logger.exception("could not export model version %s to ONNX", version.name)
    return version


def model_version_activate(
    *,
    model_version: ModelVersion,
    apply_thresholds: bool = False,
    user: AbstractBaseUser | None = None,
    action: str = ModelEvent.Action.ACTIVATED,
    note: str = "",
) -> ModelVersion:
    """Make ``model_version`` the one that routes traffic; the previous one is retired.

    ``apply_thresholds``: also save a policy version with the thresholds suggested for this model
    on its validation data (other categories keep their current thresholds), since a new model's
    scores are calibrated differently from the old one's.
    """
    from moderation.services.policies import policy_create, policy_current

    with transaction.atomic():
        previous = list(
            ModelVersion.objects.select_for_update()
            .filter(status=ModelVersion.Status.ACTIVE)
            .exclude(pk=model_version.pk)
        )
        ModelVersion.objects.filter(pk__in=[p.pk for p in previous]).update(status=ModelVersion.Status.RETIRED)
        ModelVersion.objects.filter(pk=model_version.pk).update(
            status=ModelVersion.Status.ACTIVE, activated_at=timezone.now()
        )
        for old in previous:
            model_event_record(
                model_version=old, action=ModelEvent.Action.RETIRED, actor=user, note=f"replaced by {model_version}"
            )
        model_event_record(model_version=model_version, action=action, actor=user, note=note)
        if apply_thresholds:
            suggested = (model_version.metrics or {}).get("suggested_thresholds")
            if not suggested:
                raise RegistryError(f"{model_version.name} has no suggested thresholds in its metrics")
            policy_create(
                thresholds={**policy_current().thresholds, **suggested},
                reason=f"Thresholds suggested on validation data for model {model_version.name}.",
                created_by=user,
            )
    model_version.refresh_from_db()
    return model_version


def model_version_rollback(*, apply_thresholds: bool = False, user: AbstractBaseUser | None = None) -> ModelVersion:
    """Re-activate the version that was active before the current one."""
    previous = (
        ModelVersion.objects.filter(status=ModelVersion.Status.RETIRED, activated_at__isnull=False)
        .order_by("-activated_at")
        .first()
    )
    if previous is None:
        raise RegistryError("no previously active model version to roll back to")
    return model_version_activate(
        model_version=previous, apply_thresholds=apply_thresholds, user=user, action=ModelEvent.Action.ROLLED_BACK
    )


def model_version_shadow(*, model_version: ModelVersion, user: AbstractBaseUser | None = None) -> ModelVersion:
    """Let a candidate score new uploads beside the active model without routing them, so the
    dashboard compares the two on live traffic. Workers pick it up on their next task."""
    if model_version.status not in (ModelVersion.Status.CANDIDATE, ModelVersion.Status.RETIRED):
        raise RegistryError(f"{model_version.name} is {model_version.status}; only candidates go to shadow")
    ModelVersion.objects.filter(pk=model_version.pk).update(status=ModelVersion.Status.SHADOW)
    model_event_record(model_version=model_version, action=ModelEvent.Action.SHADOW, actor=user)
    model_version.refresh_from_db()
    return model_version


def model_versions_shadow() -> list[ModelVersion]:
    return list(ModelVersion.objects.filter(status=ModelVersion.Status.SHADOW).order_by("pk"))


def model_version_get(*, name: str) -> ModelVersion:
    try:
        return ModelVersion.objects.get(name=name)
    except ModelVersion.DoesNotExist:
        known = ", ".join(ModelVersion.objects.values_list("name", flat=True)[:20]) or "none"
        raise RegistryError(f"no model version named {name!r} (known: {known})") from None


def model_version_ensure_active() -> ModelVersion:
    """The active model version; on a fresh install the baseline is registered and activated."""
    active = ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).first()
    if active is not None:
        return active
    return model_version_activate(model_version=model_version_register_baseline())
