"""Retraining: when enough new human labels exist, export → add the base dataset (rehearsal) →
train (probe or fine-tune, by the amount of data) → register the candidate → score it and the
active model on the same held-out images (this deployment's, and the guard sets) → promotion rule.

Every run is a :class:`TrainingRun` with status, stage, progress, log and metrics. One run at a
time (a database constraint); a run that raises ends ``failed`` with the error in its log.
"""

from __future__ import annotations

import logging
import shutil
import traceback
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from feedback.models import TrainingRun
from feedback.services.categories import BASE_CATEGORY, learn_plan
from feedback.services.export import ExportFilters, export_imagefolder
from feedback.services.heldout import DEPLOYMENT, guard_sets, guards_score, heldout_compare
from feedback.services.promotion import promotion_verdict
from feedback.services.training_data import HeldOutSet, base_data, recipe_for, write_training_manifest
from moderation.models import ModelEvent, ModelVersion
from moderation.services.model_versions import (
    model_event_record,
    model_version_activate,
    model_version_ensure_active,
    model_version_register,
)
from reviews.models import Decision, ReviewRound

logger = logging.getLogger(__name__)


class RunRefused(Exception):
    """Another run is queued or running."""


def training_run_request(*, trigger: str, user: AbstractBaseUser | None = None) -> TrainingRun:
    try:
        with transaction.atomic():
            return TrainingRun.objects.create(trigger=trigger, requested_by=user)
    except IntegrityError:
        raise RunRefused("A training run is already queued or running.") from None


def new_labels_since_last_run() -> int:
    last = TrainingRun.objects.filter(status=TrainingRun.Status.SUCCEEDED).order_by("-started_at").first()
    decisions = Decision.objects.filter(round__status=ReviewRound.Status.DECIDED)
    if last is not None and last.started_at:
        decisions = decisions.filter(created_at__gte=last.started_at)
    return decisions.count()


class _Recorder:
    """Writes progress and log lines to the run row as it goes (visible to admins meanwhile)."""

    def __init__(self, run: TrainingRun) -> None:
        self.run = run
        self._last_saved = 0.0

    def log(self, line: str) -> None:
        logger.info("training run %s: %s", self.run.pk, line)
        stamp = timezone.now().strftime("%H:%M:%S")
        self.run.log += f"{stamp} {line}\n"
        TrainingRun.objects.filter(pk=self.run.pk).update(log=self.run.log)

    def progress(self, stage: str, fraction: float) -> None:
        fraction = max(0.0, min(fraction, 1.0))
        if stage == self.run.stage and fraction - self._last_saved < 0.01 and fraction < 1.0:
            return
        self._last_saved = fraction
        self.run.stage, self.run.progress = stage, fraction
        TrainingRun.objects.filter(pk=self.run.pk).update(stage=stage, progress=fraction)


def training_run_execute(*, run: TrainingRun, force: bool = False) -> TrainingRun:
    """Carry out a queued run. ``force`` ignores the new-label minimum; such a run's candidate is
    never promoted automatically."""
    from moderation.ml.datasets import class_counts, load_split
    from moderation.ml.train import TrainConfig, train

    record = _Recorder(run)
    TrainingRun.objects.filter(pk=run.pk).update(
        status=TrainingRun.Status.RUNNING, started_at=timezone.now(), forced=force
    )
    run.refresh_from_db()
    workdir = Path(settings.VAR_DIR) / "training" / f"run-{run.pk}"
    try:
        run.new_labels = new_labels_since_last_run()
        TrainingRun.objects.filter(pk=run.pk).update(new_labels=run.new_labels)
        minimum = settings.VIGIL_RETRAIN_MIN_LABELS
        if run.new_labels < minimum and not force:
            record.log(f"{run.new_labels} new labels since the last run; waiting for {minimum}.")
            return _finish(run, TrainingRun.Status.SKIPPED)

        record.progress("export", 0.0)
        if workdir.exists():
            shutil.rmtree(workdir)
        data = workdir / "data"
        summary = export_imagefolder(
            data,
            ExportFilters(),
            val_fraction=settings.VIGIL_RETRAIN_VAL_FRACTION,
            seed=settings.VIGIL_RETRAIN_SPLIT_SEED,
        )
        run.labels = summary.images
        TrainingRun.objects.filter(pk=run.pk).update(labels=summary.images)
        record.log(f"exported {summary.images} labelled images: {summary.by_split_label}")
        for split in ("train", "val"):
            counts = class_counts(load_split(data, split))
            if min(counts.values(), default=0) == 0 or len(counts) < 2:
                record.log(f"the {split} split needs both safe and harmful images, has {counts}; not training.")
                return _finish(run, TrainingRun.Status.SKIPPED)

        plan = learn_plan(data)
        for line in plan.lines:
            record.log(f"categories: {line}")
        base = base_data()
        combined = workdir / "combined"
        sources = write_training_manifest(combined, deployment=data, base=base, base_category=BASE_CATEGORY)
        if base is None:
            record.log(
                "no base dataset (VIGIL_RETRAIN_BASE_DATA): training on this deployment's labels only; "
                "what earlier models knew elsewhere is not rehearsed"
            )
        else:
            record.log(f"rehearsal: base dataset {base.root} joins training; guard split: {base.heldout.split}")
        record.log(f"training data by split/source: {sources}")
        train_images = sum(sum(c.values()) for key, c in sources.items() if key.startswith("train/"))
        recipe, unfreeze, why = recipe_for(train_images)
        record.log(f"recipe: {recipe} ({why})")
        config = TrainConfig(
            data=str(combined),
            out=str(workdir / "model"),
            category=plan.outputs[0],
            categories=plan.outputs if plan.multilabel else None,
            backbone=settings.VIGIL_RETRAIN_BACKBONE,
            image_size=settings.VIGIL_RETRAIN_IMAGE_SIZE or None,
            unfreeze=unfreeze,
            epochs=settings.VIGIL_RETRAIN_EPOCHS,
            aug_views=settings.VIGIL_RETRAIN_AUG_VIEWS,
            suggest_min_per_class=settings.VIGIL_RETRAIN_SUGGEST_MIN_PER_CLASS,
            seed=run.pk,
            progress=False,
        )
        record.log(f"training {config.backbone} for up to {config.epochs} epochs")
        result = train(config, on_progress=lambda stage, f: record.progress(f"train: {stage}", 0.05 + 0.7 * f))
        record.log(f"trained in {result.seconds:.0f} s, best epoch {result.best_epoch}")
        if "nudity_head" in result.metrics:
            record.log(f"categories: nudity: {result.metrics['nudity_head']['why']}")
        for note in result.metrics.get("threshold_notes", []):
            record.log(note)
        calibration = result.metrics["calibration"]
        record.log(
            f"calibration temperature {calibration['temperature']:.4f}: val ECE {calibration['val_ece_before']:.4f} "
            f"uncalibrated, {calibration['val_ece_after']:.4f} calibrated"
            + (f" ({calibration['note']})" if calibration["note"] else "")
        )

        record.progress("register", 0.77)
        active = model_version_ensure_active()
        # The candidate is served as the active model is (its tiling): the held-out comparison is
        # like for like, and promoting it keeps the admins' choice.
        candidate = model_version_register(
            checkpoint=result.checkpoint,
            name=f"retrain-{run.pk}-{timezone.now():%Y%m%d-%H%M}",
            notes=f"Training run {run.pk}: {summary.images} labelled images; {recipe}"
            + (f"; rehearsal on {base.root}" if base else "; no base dataset")
            + ".",
            tiling=active.tiling,
        )
        record.progress("evaluate", 0.8)
        heldout, compared = heldout_compare(candidate=candidate, active=active, root=data)
        sets = guard_sets(base=base, active=active)
        record.progress("evaluate: guard sets", 0.9)
        guards = guards_score(candidate=candidate, active=active, sets=sets)
        verdict = promotion_verdict(compared, forced=force, seed=run.pk, guards=guards)
        deployment = HeldOutSet(DEPLOYMENT, str(data), "val")
        metrics = {
            **heldout,
            "active_name": active.name,
            "verdict": verdict.as_dict(),
            "sets": [deployment.as_dict(), *(s.as_dict() for s in sets)],
            "training_data": sources,
            "recipe": {"name": recipe, "unfreeze": unfreeze, "why": why},
            "categories": plan.as_dict(),
        }
        ModelVersion.objects.filter(pk=candidate.pk).update(metrics={**candidate.metrics, "heldout": metrics})
        candidate.refresh_from_db()
        record.log(f"held-out: candidate {heldout['candidate']}, active {heldout['active']}")
        for guard in verdict.figures.get("guards", []):
            if guard["available"]:
                record.log(
                    f"guard {guard['name']}: AUC candidate {guard['auc']['candidate']:.4f} vs active "
                    f"{guard['auc']['active']:.4f}, new misses {guard['new_misses']}"
                )
        promoted = verdict.promote and settings.VIGIL_PROMOTION_AUTO
        if verdict.promote and not promoted:
            verdict_note = "; ".join(verdict.reasons) + " (automatic promotion is off: VIGIL_PROMOTION_AUTO=0)"
        else:
            verdict_note = "; ".join(verdict.reasons)
        if promoted:
            model_version_activate(model_version=candidate, action=ModelEvent.Action.AUTO_PROMOTED, note=verdict_note)
            record.log(f"promoted {candidate.name} (rule: {verdict.rule}): {verdict_note}")
        else:
            model_event_record(model_version=candidate, action=ModelEvent.Action.HELD, note=verdict_note)
            record.log(f"kept {candidate.name} as a candidate (rule: {verdict.rule}): {verdict_note}")
        TrainingRun.objects.filter(pk=run.pk).update(metrics=metrics, candidate=candidate, promoted=promoted)
        return _finish(run, TrainingRun.Status.SUCCEEDED)
    except Exception as exc:
        record.log(f"failed: {type(exc).__name__}: {exc}")
        record.log(traceback.format_exc(limit=5))
        return _finish(run, TrainingRun.Status.FAILED)
    finally:
        shutil.rmtree(workdir / "model" / "feature-cache", ignore_errors=True)


def _finish(run: TrainingRun, status: str) -> TrainingRun:
    TrainingRun.objects.filter(pk=run.pk).update(
        status=status,
        finished_at=timezone.now(),
        progress=1.0 if status == TrainingRun.Status.SUCCEEDED else run.progress,
    )
    run.refresh_from_db()
    return run
