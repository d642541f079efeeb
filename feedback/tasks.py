from celery import shared_task

from feedback.models import TrainingRun
from feedback.services.retrain import RunRefused, training_run_execute, training_run_request


@shared_task(ignore_result=True)
def retrain_scheduled() -> str:
    """The periodic retraining (schedule in the admin: Periodic tasks). Skips itself when too few
    new labels exist or another run is under way."""
    try:
        run = training_run_request(trigger=TrainingRun.Trigger.SCHEDULE)
    except RunRefused:
        return "busy"
    return training_run_execute(run=run).status


@shared_task(ignore_result=True)
def run_training(run_id: int, force: bool = False) -> str:
    """A run an admin asked for from the page."""
    run = TrainingRun.objects.get(pk=run_id)
    return training_run_execute(run=run, force=force).status
