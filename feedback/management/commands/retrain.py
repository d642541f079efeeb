"""python manage.py retrain [--force]: one retraining run now, in this process."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from feedback.models import TrainingRun
from feedback.services.retrain import RunRefused, training_run_execute, training_run_request


class Command(BaseCommand):
    help = (
        "When enough new human labels exist (VIGIL_RETRAIN_MIN_LABELS), export them, fine-tune a candidate, "
        "evaluate it and the active model on the same held-out images, register it and apply the promotion rule."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--force", action="store_true", help="run even with few new labels")

    def handle(self, *args, **options) -> None:
        try:
            run = training_run_request(trigger=TrainingRun.Trigger.COMMAND)
        except RunRefused as exc:
            raise CommandError(str(exc)) from None
        run = training_run_execute(run=run, force=options["force"])
        self.stdout.write(run.log.rstrip())
        self.stdout.write(f"training run {run.pk}: {run.status}")
        if run.status == TrainingRun.Status.FAILED:
            raise CommandError("the training run failed; see the log above")
