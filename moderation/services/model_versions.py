"""The model registry: register trained checkpoints, choose which version routes traffic, roll back.

Registered weights are copied into ``VIGIL_MODEL_DIR`` under their sha256, so the registry does
not depend on a training folder that may be cleaned up, and a file that changes afterwards is
detected when a worker loads it. Workers load the active version on their next task: activating
or rolling back needs no restart.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from moderation.ml.files import atomic_write, file_sha256
from moderation.models import Change, ModelEvent, ModelVersion, PolicyDraft, ThresholdPolicy
from moderation.services.changes import change_record

logger = logging.getLogger(__name__)

BASELINE_NAME = "baseline-imagenet-nsfw-v1"
# The tiling a new fine-tuned model version gets when neither ``register_model --tiling`` nor its
# checkpoint says otherwise. Measured on realbench (docs/benchmarks.md, "Tiled scoring").
DEFAULT_TILING = ModelVersion.Tiling.NONE


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
    if (model_version.config or {}).get("quantized"):
        # Its int8 files are the model: never write an fp32 export in their place.
        raise RegistryError(
            f"{model_version.name} is an int8 version whose files are missing: `manage.py quantize_model "
            f"{model_version.config['quantized'].get('source', '')}` writes them again"
        )
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
    *, checkpoint: str | Path, name: str = "", notes: str = "", nudity: bool = True, tiling: str | None = None
) -> ModelVersion:
    """Register a fine-tuned checkpoint (from ``train``) as a candidate model version.

    ``nudity``: also score nudity with open_nsfw, as the baseline does, so a fine-tuned weapon
    model does not drop a category the thresholds route on. ``tiling``: ``none``, ``2x2`` or
    ``3x3`` (moderation/ml/tiling.py); by default the tiling the checkpoint was trained for
    (``train --tiling``), else :data:`DEFAULT_TILING`.
    """
    from moderation.ml import checkpoints
    from moderation.ml.finetuned import NUDITY, learned_nudity_wins

    source = Path(checkpoint)
    try:
        meta = checkpoints.read(source)
    except checkpoints.CheckpointError as exc:
        raise RegistryError(str(exc)) from None
    sha256 = file_sha256(source)
    existing = ModelVersion.objects.filter(weights_sha256=sha256).first()
    if existing is not None:
        raise RegistryError(f"these weights are already registered as {existing.name!r}")
    tiling = _tiling_checked(tiling if tiling is not None else meta["config"].get("tiling") or DEFAULT_TILING)
    name = name.strip() or f"{meta['backbone']}-{meta['category']}-{sha256[:8]}"
    if ModelVersion.objects.filter(name=name).exists():
        raise RegistryError(f"a model version named {name!r} already exists")
    stored = _copy_into_registry(source, sha256)
    # What the classifier will score (FineTunedClassifier): the learned outputs, less a
    # multi-label nudity output that lost to open_nsfw, plus open_nsfw's nudity.
    outputs = list(meta.get("categories") or [meta["category"]])
    if len(outputs) > 1 and not learned_nudity_wins(meta):
        outputs = [name for name in outputs if name != NUDITY]
    categories = outputs + ([NUDITY] if nudity and NUDITY not in outputs else [])
    version = ModelVersion.objects.create(
        name=name,
        architecture=checkpoints.ARCHITECTURE,
        weights=str(stored),
        weights_sha256=sha256,
        preprocessing=meta["preprocessing"],
        categories=categories,
        tiling=tiling,
        config={
            "backbone": meta["backbone"],
            "unfreeze": meta["unfreeze"],
            "category": meta["category"],
            "categories": list(meta.get("categories") or [meta["category"]]),
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
    if settings.VIGIL_QUANTIZE_AT_REGISTRATION:
        from moderation.services.quantization import model_version_quantize

        try:  # its int8 sibling, a candidate beside it; the fp32 version is registered either way
            sibling = model_version_quantize(model_version=version).model_version
            logger.info("registered %s, the int8 sibling of %s", sibling.name, version.name)
        except Exception:
            logger.exception("could not quantize model version %s (it is registered, in fp32)", version.name)
    return version


def _tiling_checked(tiling: str) -> str:
    if tiling not in ModelVersion.Tiling.values:
        raise RegistryError(f"tiling must be one of {', '.join(ModelVersion.Tiling.values)}, not {tiling!r}")
    return tiling


def model_version_set_tiling(
    *, model_version: ModelVersion, tiling: str, user: AbstractBaseUser | None = None, note: str = ""
) -> ModelVersion:
    """Switch a version's tiled scoring (``none``, ``2x2``, ``3x3``). Recorded in its audit log;
    when the version scores uploads (active or shadow) also in the change log, since its scores,
    and so the routing, change. Workers apply it from their next task (the version's tiling is
    part of what :func:`moderation.classifiers.classifier_for` loads)."""
    tiling = _tiling_checked(tiling)
    with transaction.atomic():
        version = ModelVersion.objects.select_for_update().get(pk=model_version.pk)
        if version.tiling == tiling:
            return version
        before = version.get_tiling_display().lower()
        version.tiling = tiling
        version.save(update_fields=["tiling"])
        after = version.get_tiling_display().lower()
        text = f"{before} → {after}" + (f": {note.strip()}" if note.strip() else "")
        model_event_record(model_version=version, action=ModelEvent.Action.TILING, actor=user, note=text)
        if version.status in (ModelVersion.Status.ACTIVE, ModelVersion.Status.SHADOW):
            who = user.get_username() if user else "the system"
            role = "routes uploads" if version.status == ModelVersion.Status.ACTIVE else "scores in shadow"
            change_record(
                kind=Change.Kind.MODEL,
                action=Change.Action.TILING,
                summary=f"Model {version.name} ({role}) now scores {after} instead of {before} (by {who})."
                + (f" Note: {note.strip()}" if note.strip() else ""),
                actor=user,
                model_version=version,
            )
    return version


_CHANGE_ACTIONS = {
    ModelEvent.Action.ACTIVATED: Change.Action.PROMOTED,
    ModelEvent.Action.AUTO_PROMOTED: Change.Action.AUTO_PROMOTED,
    ModelEvent.Action.ROLLED_BACK: Change.Action.ROLLED_BACK,
}


def model_version_activate(
    *,
    model_version: ModelVersion,
    user: AbstractBaseUser | None = None,
    action: str = ModelEvent.Action.ACTIVATED,
    note: str = "",
    propose_thresholds: bool = True,
) -> ModelVersion:
    """Make ``model_version`` the one that routes traffic; the previous one is retired, and its
    retirement records the policy in force with it (what a rollback to it restores).

    The policy is never changed here. ``propose_thresholds``: offer the thresholds suggested for
    this model on its validation data as a draft on the threshold page (a new model's scores are
    calibrated differently), for an admin to review and save."""
    from moderation.services.policies import policy_current, policy_draft_propose

    with transaction.atomic():
        policy = policy_current()
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
            ModelEvent.objects.create(
                model_version=old,
                action=ModelEvent.Action.RETIRED,
                actor=user,
                note=f"replaced by {model_version}",
                policy=policy,
            )
        ModelEvent.objects.create(model_version=model_version, action=action, actor=user, note=note, policy=policy)
        model_version.refresh_from_db()
        draft = policy_draft_propose(model_version=model_version) if propose_thresholds else None
        if previous:  # a fresh install's first activation changes nothing anyone relied on
            who = (
                user.get_username()
                if user
                else ("the promotion rule" if action == ModelEvent.Action.AUTO_PROMOTED else "the system")
            )
            summary = (
                f"Model {model_version.name} now routes uploads instead of {', '.join(p.name for p in previous)} "
                f"({ModelEvent.Action(action).label.lower()} by {who}), under policy v{policy.version}."
            )
            if draft is not None:
                summary += " Its suggested thresholds wait as a draft on the threshold page."
            if note:
                summary += f" Note: {note}"
            change_record(
                kind=Change.Kind.MODEL,
                action=_CHANGE_ACTIONS.get(action, Change.Action.PROMOTED),
                summary=summary,
                actor=user,
                model_version=model_version,
                policy=policy,
            )
    return model_version


@dataclass(frozen=True)
class RollbackTarget:
    model_version: ModelVersion
    policy: ThresholdPolicy | None  # the policy in force with it when it was retired


def model_version_rollback_target() -> RollbackTarget | None:
    """The version active before the current one, with the policy that routed with it; None
    when there is nothing to roll back to."""
    from moderation.services.policies import policy_in_force_at

    previous = (
        ModelVersion.objects.filter(status=ModelVersion.Status.RETIRED, activated_at__isnull=False)
        .order_by("-activated_at")
        .first()
    )
    if previous is None:
        return None
    retired = (
        ModelEvent.objects.filter(model_version=previous, action=ModelEvent.Action.RETIRED)
        .select_related("policy")
        .order_by("-created_at", "-id")
        .first()
    )
    if retired is None:
        return RollbackTarget(previous, None)
    return RollbackTarget(previous, retired.policy or policy_in_force_at(retired.created_at))


def model_version_rollback(*, user: AbstractBaseUser | None, reason: str) -> ModelVersion:
    """Re-activate the version that was active before the current one **and** the policy that was
    in force with it (saved as a new policy version, since policies are never edited), recording
    who and why. Drafts the rolled-back model proposed are dismissed."""
    from moderation.services.policies import policy_create, policy_current

    if not reason.strip():
        raise RegistryError("Say why you roll back.")
    target = model_version_rollback_target()
    if target is None:
        raise RegistryError("no previously active model version to roll back to")
    with transaction.atomic():
        leaving = ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).first()
        restored = model_version_activate(
            model_version=target.model_version,
            user=user,
            action=ModelEvent.Action.ROLLED_BACK,
            note=reason.strip(),
            propose_thresholds=False,
        )
        if leaving is not None:
            PolicyDraft.objects.filter(model_version=leaving, status=PolicyDraft.Status.OPEN).update(
                status=PolicyDraft.Status.DISMISSED, resolved_by=user, resolved_at=timezone.now()
            )
        if target.policy is not None and target.policy.thresholds != policy_current().thresholds:
            policy_create(
                thresholds=target.policy.thresholds,
                reason=(
                    f"Rollback to model {restored.name} restores the thresholds of policy v{target.policy.version}, "
                    f"in force with it. {reason.strip()}"
                ),
                created_by=user,
                confirm_no_human_band=True,  # confirmed when it was first saved
                action=Change.Action.RESTORED,
            )
    return restored


def model_version_shadow(*, model_version: ModelVersion, user: AbstractBaseUser | None = None) -> ModelVersion:
    """Let a candidate score new uploads beside the active model without routing them, so the
    dashboard compares the two on live traffic. Workers pick it up on their next task."""
    if model_version.status not in (ModelVersion.Status.CANDIDATE, ModelVersion.Status.RETIRED):
        raise RegistryError(f"{model_version.name} is {model_version.status}; only candidates go to shadow")
    with transaction.atomic():
        ModelVersion.objects.filter(pk=model_version.pk).update(status=ModelVersion.Status.SHADOW)
        model_event_record(model_version=model_version, action=ModelEvent.Action.SHADOW, actor=user)
        who = user.get_username() if user else "the system"
        change_record(
            kind=Change.Kind.MODEL,
            action=Change.Action.SHADOW,
            summary=f"Model {model_version.name} now scores new uploads in shadow (by {who}); it routes nothing.",
            actor=user,
            model_version=model_version,
        )
    model_version.refresh_from_db()
    return model_version


def model_versions_shadow() -> list[ModelVersion]:
    return list(ModelVersion.objects.filter(status=ModelVersion.Status.SHADOW).order_by("pk"))


def model_version_reference(model_version: ModelVersion) -> ModelVersion:
    """The fp32 version a quantized version was made from (the reference its agreement is measured
    against, e.g. by bench/quantization.py), or ``model_version`` itself when it is not quantized."""
    quantized = (model_version.config or {}).get("quantized")
    if not quantized:
        return model_version
    source = (
        ModelVersion.objects.filter(weights_sha256=quantized.get("source_sha256"))
        .exclude(pk=model_version.pk)
        .order_by("created_at")
        .first()
    )
    if source is None:
        raise RegistryError(
            f"{model_version.name} was quantized from {quantized.get('source')!r}, which is no longer registered"
        )
    return source


def model_version_quantized_sibling(model_version: ModelVersion) -> ModelVersion | None:
    """The newest int8 version made from ``model_version`` (or from its source), if any."""
    source = model_version_reference(model_version)
    return (
        ModelVersion.objects.filter(config__quantized__source_sha256=source.weights_sha256)
        .order_by("-created_at", "-pk")
        .first()
    )


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
