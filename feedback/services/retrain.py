"""Retraining: when enough new human labels exist, export → fine-tune → evaluate the candidate
and the active model on the same held-out images → register the candidate → promotion rule.

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
from feedback.services.export import ExportFilters, export_imagefolder
from feedback.services.promotion import promotion_verdict
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


def _score_heldout(model_version: ModelVersion, root: Path) -> dict:
    from moderation.classifiers import classifier_for
    from moderation.ml.datasets import load_split
    from moderation.ml.inference import harmful_score, score_files
    from moderation.ml.metrics import comparison_metrics

    samples = load_split(root, "val")
    results = score_files(classifier_for(model_version), [s.path for s in samples])
    pairs = [(s.label, harmful_score(r.scores)) for s, r in zip(samples, results, strict=True) if r.scores]
    return comparison_metrics([label for label, _ in pairs], [score for _, score in pairs])


def training_run_execute(*, run: TrainingRun, force: bool = False) -> TrainingRun:
    """Carry out a queued run. ``force`` ignores the new-label minimum."""
    from moderation.ml.datasets import class_counts, load_split
    from moderation.ml.train import TrainConfig, train

    record = _Recorder(run)
    TrainingRun.objects.filter(pk=run.pk).update(status=TrainingRun.Status.RUNNING, started_at=timezone.now())
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
            data, ExportFilters(), val_fraction=settings.VIGIL_RETRAIN_VAL_FRACTION, seed=run.pk
        )
        run.labels = summary.images
        TrainingRun.objects.filter(pk=run.pk).update(labels=summary.images)
        record.log(f"exported {summary.images} labelled images: {summary.by_split_label}")
        for split in ("train", "val"):
            counts = class_counts(load_split(data, split))
            if min(counts.values(), default=0) == 0 or len(counts) < 2:
                record.log(f"the {split} split needs both safe and harmful images, has {counts}; not training.")
                return _finish(run, TrainingRun.Status.SKIPPED)

        config = TrainConfig(
            data=str(data),
            out=str(workdir / "model"),
            backbone=settings.VIGIL_RETRAIN_BACKBONE,
            image_size=settings.VIGIL_RETRAIN_IMAGE_SIZE or None,
            epochs=settings.VIGIL_RETRAIN_EPOCHS,
            aug_views=settings.VIGIL_RETRAIN_AUG_VIEWS,
            seed=run.pk,
            progress=False,
        )
        record.log(f"training {config.backbone} for up to {config.epochs} epochs")
        result = train(config, on_progress=lambda stage, f: record.progress(f"train: {stage}", 0.05 + 0.75 * f))
        record.log(f"trained in {result.seconds:.0f} s, best epoch {result.best_epoch}")

        record.progress("register", 0.82)
        candidate = model_version_register(
            checkpoint=result.checkpoint,
            name=f"retrain-{run.pk}-{timezone.now():%Y%m%d-%H%M}",
            notes=f"Training run {run.pk}: {summary.images} labelled images.",
        )
        record.progress("evaluate", 0.85)
        active = model_version_ensure_active()
        heldout = {"candidate": _score_heldout(candidate, data), "active": _score_heldout(active, data)}
        verdict = promotion_verdict(candidate=heldout["candidate"], active=heldout["active"])
        metrics = {
            **heldout,
            "active_name": active.name,
            "verdict": {"promote": verdict.promote, "reasons": verdict.reasons},
        }
        ModelVersion.objects.filter(pk=candidate.pk).update(metrics={**candidate.metrics, "heldout": metrics})
        record.log(f"held-out: candidate {heldout['candidate']}, active {heldout['active']}")
        promoted = verdict.promote and settings.VIGIL_PROMOTION_AUTO
        if promoted:
            model_version_activate(
                model_version=candidate,
                apply_thresholds=True,
                action=ModelEvent.Action.AUTO_PROMOTED,
                note="; ".join(verdict.reasons),
            )
            record.log(f"promoted {candidate.name}: {'; '.join(verdict.reasons)}")
        else:
            model_event_record(model_version=candidate, action=ModelEvent.Action.HELD, note="; ".join(verdict.reasons))
            record.log(f"kept {candidate.name} as a candidate: {'; '.join(verdict.reasons)}")
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
