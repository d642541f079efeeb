"""The Celery application: configured from Django settings (``CELERY_*``), tasks auto-discovered."""

import os

from celery import Celery
from celery.signals import worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("vigil")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_process_init.connect
def _warm_model(**kwargs) -> None:
    """Load the active model when a worker process starts, not on its first upload."""
    from moderation.worker import warm_up

    warm_up()
