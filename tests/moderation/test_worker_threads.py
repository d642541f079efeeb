"""How many threads one model call gets: a worker's cores shared among the tasks it runs at once."""

import os

import pytest

from moderation import worker


@pytest.fixture(autouse=True)
def not_a_worker(monkeypatch):
    monkeypatch.setattr(worker, "_pool_size", None)


def test_outside_a_worker_a_model_call_uses_every_core(settings):
    settings.VIGIL_TORCH_THREADS = 0
    assert worker.intra_op_threads() is None


@pytest.mark.parametrize(("cores", "pool", "threads"), [(2, 2, 1), (8, 2, 4), (2, 1, 2), (2, 4, 1), (3, 2, 1)])
def test_a_workers_cores_are_shared_among_its_pool(settings, monkeypatch, cores, pool, threads):
    settings.VIGIL_TORCH_THREADS = 0
    monkeypatch.setattr(worker, "cores", lambda: cores)
    worker.pool_started(pool)
    assert worker.intra_op_threads() == threads


def test_the_setting_wins(settings):
    settings.VIGIL_TORCH_THREADS = 3
    worker.pool_started(2)
    assert worker.intra_op_threads() == 3


def test_make_runs_worker_runs_one_task_per_core_by_default(settings):
    from pathlib import Path

    conf = (Path(__file__).resolve().parents[2] / "config" / "supervisord.conf").read_text()
    worker_line = next(line for line in conf.splitlines() if "hostname=vigil-worker" in line)
    assert "--concurrency" not in worker_line  # the setting decides
    if "CELERY_WORKER_CONCURRENCY" not in os.environ:
        assert worker.cores() == settings.CELERY_WORKER_CONCURRENCY
