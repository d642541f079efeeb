"""Worker process set-up: a warm model, and how many threads each model call may use."""

from __future__ import annotations

import logging
import os

from django.conf import settings

logger = logging.getLogger(__name__)

# The pool size of the Celery worker this process is (None: not a worker, e.g. a command).
_pool_size: int | None = None


def cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def pool_started(size: int) -> None:
    """Record that this process is a worker running ``size`` tasks at once (called at start)."""
    global _pool_size
    _pool_size = max(1, int(size))


def intra_op_threads() -> int | None:
    """Threads for one model call: ``VIGIL_TORCH_THREADS`` when set; in a worker, its cores shared
    among the tasks it runs at once (2 cores, 2 pool threads: 1 thread each, which routed about
    1.7 times as many uploads a second as one task with 2 threads: docs/benchmarks.md); elsewhere
    (commands, benchmarks) None, every core."""
    if settings.VIGIL_TORCH_THREADS:
        return settings.VIGIL_TORCH_THREADS
    if _pool_size is None:
        return None
    return max(1, cores() // _pool_size)


def warm_up() -> None:
    """Load the active model (from its ONNX export when there is one: then torch is never
    imported in this process); threads: :func:`intra_op_threads`."""
    try:
        from moderation.classifiers import classifier_for
        from moderation.services.model_versions import model_version_ensure_active

        classifier_for(model_version_ensure_active())
    except Exception:  # the database may not be migrated yet; the first task will load it
        logger.exception("could not warm the model at worker start")
