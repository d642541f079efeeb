"""The Celery application: configured from Django settings (``CELERY_*``), tasks auto-discovered."""

import os

from celery import Celery
from celery.signals import worker_process_init, worker_ready, worker_shutdown

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("vigil")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_process_init.connect
def _warm_model(**kwargs) -> None:
    """Load the active model when a scoring worker process starts, not on its first upload.
    Workers for other queues (webhooks, training) never load it here."""
    if "scoring" not in app.amqp.queues.consume_from:
        return
    from django.conf import settings

    from moderation.worker import pool_started, warm_up

    if kwargs.get("pool_size") is None:  # a prefork child: its siblings share the cores
        pool_started(settings.CELERY_WORKER_CONCURRENCY)
    warm_up()


@worker_ready.connect
def _warm_model_for_threads(sender, **kwargs) -> None:
    """The thread pool (``make run``'s worker) sends no ``worker_process_init``: its tasks run in
    this process, which loads the model once for all its threads, before it says ``ready.``"""
    from celery.concurrency.thread import TaskPool

    if isinstance(getattr(sender, "pool", None), TaskPool):
        from moderation.worker import pool_started

        pool_started(sender.concurrency)  # its tasks' threads share this process's cores
        _warm_model(pool_size=sender.concurrency)


@worker_ready.connect
def _start_heartbeat(sender=None, **kwargs) -> None:
    """Every worker, whatever its queues and pool, records that it is alive (moderation/heartbeat.py)."""
    from moderation.heartbeat import heartbeat_start

    heartbeat_start(hostname=sender.hostname, queues=list(app.amqp.queues.consume_from))


@worker_shutdown.connect
def _stop_heartbeat(**kwargs) -> None:
    from moderation.heartbeat import heartbeat_stop

    heartbeat_stop()
