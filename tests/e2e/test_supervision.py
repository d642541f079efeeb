"""Crash-only, as `make run` runs it: the real supervised stack (supervisord with
config/supervisord.conf: web, scoring worker, housekeeping worker, trainer, beat) in a temporary
VIGIL_VAR_DIR on a free port, with the embedded defaults (SQLite, filesystem broker) whatever
the test run uses. A SIGKILLed worker is restarted and scores again while the web keeps
answering; a SIGKILLed task-running process leaves a worker that consumes; SIGINT (Ctrl-C)
stops every process.

Every wait polls a condition with a generous bound: these run on a loaded 2-core machine.
"""

from __future__ import annotations

import os
import signal

import pytest
from django.conf import settings

from tests.e2e.supervised import PROGRAMS, Prober, alive, children, supervised_stack, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with supervised_stack(tmp_path_factory.mktemp("supervised") / "var") as running:
        yield running


def test_a_killed_worker_is_restarted_and_scores_while_the_web_keeps_serving(stack):
    first = stack.upload(1)
    wait_for(lambda: stack.routed(first), "the first upload to be routed")
    old_pid = stack.pid("worker")
    others = {program: stack.pid(program) for program in PROGRAMS if program != "worker"}
    readies = stack.log("worker").count(" ready.")

    prober = Prober(stack)
    prober.start()
    try:
        os.kill(old_pid, signal.SIGKILL)
        new_pid = wait_for(lambda: (pid := stack.pid("worker")) and pid != old_pid and pid, "a new worker")
        wait_for(lambda: stack.log("worker").count(" ready.") > readies, "the restarted worker to be ready")
        second = stack.upload(2)  # the web takes uploads throughout
        wait_for(lambda: stack.routed(second), "an upload to be scored by the restarted worker")
    finally:
        prober.stop()

    assert prober.errors == [], prober.errors[:5]
    assert prober.ok > 0
    assert not alive(old_pid) and new_pid != old_pid
    # The others kept running: nothing else was restarted.
    assert {program: stack.pid(program) for program in others} == others
    supervisor_log = (stack.var / "log" / "supervisord.log").read_text()
    assert "exited: worker (terminated by SIGKILL; not expected)" in supervisor_log


def test_killing_the_process_that_runs_the_task_leaves_a_consuming_worker(stack):
    """What the OOM killer does to a worker scoring an upload. With a prefork pool that is a pool
    child and the worker could wedge (issue 17); make run's thread pool runs the task in the worker
    process, so the worker dies with it and supervisord starts a new one."""
    worker = stack.pid("worker")
    burst = [stack.upload(100 + n) for n in range(20)]
    wait_for(lambda: any(stack.routed(upload) for upload in burst), "the worker to be scoring the burst")
    task_process = (children(worker) or [worker])[0]
    os.kill(task_process, signal.SIGKILL)

    after = stack.upload(200)
    wait_for(lambda: stack.routed(after), "an upload sent after the kill to be scored")
    # Messages are taken in order: everything before `after` was scored too, except what the killed
    # process held: each of its tasks a batch of leased uploads, and a message in hand (the
    # filesystem broker deletes a message as it hands it out). Their leases expire and beat's
    # sweeper sends them again, each to be scored alone: none is lost.
    held = settings.CELERY_WORKER_CONCURRENCY * (settings.VIGIL_SCORING_BATCH_SIZE + 1)
    assert sum(not stack.routed(upload) for upload in burst) <= held
    assert alive(stack.pid("worker"))
    wait_for(lambda: all(stack.routed(upload) for upload in burst), "the killed worker's uploads to be scored again")


def test_ctrl_c_stops_every_process(stack):
    pids = {program: stack.pid(program) for program in PROGRAMS}
    assert all(pids.values()), pids
    stack.supervisord.send_signal(signal.SIGINT)  # what Ctrl-C sends to `make run`
    assert stack.supervisord.wait(90) == 0
    wait_for(lambda: not any(alive(pid) for pid in stack.pids_seen), "every supervised process to exit")
    output = stack.output.read_text()
    assert "received SIGINT" in output
    # Every process's lines reached the terminal with its name in front.
    for program in PROGRAMS:
        assert f"\n{program.ljust(12)}| " in output, program
