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

import numpy as np
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from feedback.models import TrainingRun
from feedback.services.export import ExportFilters, export_imagefolder
from feedback.services.promotion import HeldOut, promotion_verdict
from moderation.models import ModelEvent, ModelVersion
from moderation.routing import Route, route_scores
from moderation.services.model_versions import (
    model_event_record,
    model_version_activate,
    model_version_ensure_active,
    model_version_register,
)
from moderation.services.policies import policy_current
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


def _score_heldout(model_version: ModelVersion, samples: list) -> list[tuple[int, dict[str, float]]]:
    """(label, category scores) of each held-out image the model could score."""
    from moderation.classifiers import classifier_for
    from moderation.ml.inference import score_files

    results = score_files(
        classifier_for(model_version), [s.path for s in samples], max_frames=settings.VIGIL_MAX_SCORED_FRAMES
    )
    return [(s.label, r.scores) for s, r in zip(samples, results, strict=True)]


def heldout_compare(*, candidate: ModelVersion, active: ModelVersion, root: Path) -> tuple[dict, HeldOut]:
    """Score the export's ``val`` split with both models; routing under the policy in force.
    An image either model could not score is left out for both, so they are judged on the same set."""
    from moderation.ml.datasets import load_split
    from moderation.ml.inference import harmful_score
    from moderation.ml.metrics import comparison_metrics

    samples = load_split(root, "val")
    mine, theirs = _score_heldout(candidate, samples), _score_heldout(active, samples)
    both = [(m, t) for m, t in zip(mine, theirs, strict=True) if m[1] and t[1]]
    policy = policy_current()
    labels = np.asarray([m[0] for m, _ in both], dtype=int)
    scores = {
        "candidate": np.asarray([harmful_score(m[1]) for m, _ in both], dtype=float),
        "active": np.asarray([harmful_score(t[1]) for _, t in both], dtype=float),
    }
    approved = {
        name: np.asarray([route_scores(pair[i][1], policy.thresholds).route == Route.APPROVE for pair in both])
        for i, name in enumerate(("candidate", "active"))
    }
    heldout = HeldOut(
        labels=labels,
        candidate=scores["candidate"],
        active=scores["active"],
        candidate_approved=approved["candidate"].astype(bool),
        active_approved=approved["active"].astype(bool),
        policy_version=policy.version,
    )
    summary = {name: comparison_metrics(labels.tolist(), scores[name].tolist()) for name in scores}
    return summary, heldout


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
        heldout, compared = heldout_compare(candidate=candidate, active=active, root=data)
        verdict = promotion_verdict(compared, forced=force, seed=run.pk)
        metrics = {**heldout, "active_name": active.name, "verdict": verdict.as_dict()}
        ModelVersion.objects.filter(pk=candidate.pk).update(metrics={**candidate.metrics, "heldout": metrics})
        candidate.refresh_from_db()
        record.log(f"held-out: candidate {heldout['candidate']}, active {heldout['active']}")
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
