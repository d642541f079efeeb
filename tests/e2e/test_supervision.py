"""Crash-only, as `make run` runs it: the real supervised stack (supervisord with
config/supervisord.conf: web, scoring worker, housekeeping worker, trainer, beat) in a temporary
VIGIL_VAR_DIR on a free port, with the embedded defaults (SQLite, filesystem broker) whatever
the test run uses. A SIGKILLed worker is restarted and scores again while the web keeps
answering; a SIGKILLed task-running process leaves a worker that consumes; SIGINT (Ctrl-C)
stops every process.

Every wait polls a condition with a generous bound: these run on a loaded 2-core machine.
"""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from PIL import Image

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
CONF = ROOT / "config" / "supervisord.conf"
PROGRAMS = ("web", "worker", "housekeeping", "trainer", "beat")
BOUND = 120  # seconds any single event may take on a loaded machine


def wait_for(condition, what: str, timeout: float = BOUND, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes (its parent has not reaped it yet).
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


@dataclass
class Stack:
    env: dict[str, str]
    var: Path
    port: int
    token: str
    supervisord: subprocess.Popen
    output: Path
    pids_seen: set[int] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ctl(self, *args: str) -> str:
        result = subprocess.run(
            [str(BIN / "supervisorctl"), "-c", str(CONF), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        return result.stdout

    def pid(self, program: str) -> int:
        """The pid of a started program (STARTING or RUNNING), or 0."""
        out = self.ctl("pid", f"vigil:{program}").strip()
        pid = int(out) if out.isdigit() else 0
        if pid:
            self.pids_seen.add(pid)
            self.pids_seen.update(children(pid))
        return pid

    def log(self, program: str) -> str:
        path = self.var / "log" / f"{program}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def get(self, path: str, timeout: float = 10) -> tuple[int, bytes]:
        request = urllib.request.Request(self.url + path, headers={"Authorization": f"Token {self.token}"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def upload(self, n: int) -> str:
        image = io.BytesIO()
        Image.new("RGB", (96, 64), ((n * 37) % 256, (n * 91) % 256, (n * 53) % 256)).save(image, "JPEG")
        boundary = uuid.uuid4().hex
        body = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{n}.jpg"\r\n'
                f"Content-Type: image/jpeg\r\n\r\n"
            ).encode()
            + image.getvalue()
            + f"\r\n--{boundary}--\r\n".encode()
        )
        request = urllib.request.Request(
            self.url + "/api/v1/uploads/",
            data=body,
            headers={
                "Authorization": f"Token {self.token}",
                "Content-Type": f"multipart/form-data; boundary={boundary}",
            },
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 201
            return json.loads(response.read())["id"]

    def status_of(self, upload_id: str) -> str:
        status, body = self.get(f"/api/v1/uploads/{upload_id}/")
        assert status == 200, body
        return json.loads(body)["status"]

    def routed(self, upload_id: str) -> bool:
        return self.status_of(upload_id) not in ("pending", "fetching")


class Prober(threading.Thread):
    """Asks the web for /healthz every 50 ms and counts answers and connection errors."""

    def __init__(self, stack: Stack) -> None:
        super().__init__(daemon=True)
        self.stack, self.ok, self.errors = stack, 0, []
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                status, _ = self.stack.get("/healthz", timeout=10)
                if status == 200:
                    self.ok += 1
                else:
                    self.errors.append(f"HTTP {status}")
            except OSError as exc:
                self.errors.append(repr(exc))
            time.sleep(0.05)

    def stop(self) -> None:
        self.stopping.set()
        self.join(30)


def manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    var = tmp_path_factory.mktemp("supervised") / "var"
    (var / "log").mkdir(parents=True)
    port = free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        # The embedded defaults, as on a fresh clone, whatever this test run is pointed at.
        if key not in ("DATABASE_URL", "CELERY_BROKER_URL", "VIGIL_MEDIA_ROOT", "VIGIL_MODEL_DIR", "VIGIL_CACHE_URL")
    }
    env.update(
        VIGIL_VAR_DIR=str(var),
        VIGIL_PORT=str(port),
        DJANGO_DEBUG="1",
        PYTHONUNBUFFERED="1",
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
    )
    manage(env, "migrate", "--noinput")
    manage(env, "bootstrap_demo", "--no-users")
    token = manage(env, "create_api_client", "supervision-test").strip().splitlines()[-1]

    output = var / "log" / "terminal.txt"
    with output.open("w") as terminal:
        supervisord = subprocess.Popen(
            [str(BIN / "supervisord"), "-c", str(CONF)],
            cwd=ROOT,
            env=env,
            stdout=terminal,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, like `make run` in a terminal
        )
    running = Stack(env=env, var=var, port=port, token=token, supervisord=supervisord, output=output)
    try:
        wait_for(lambda: " ready." in running.log("worker"), "the scoring worker to be ready", timeout=2 * BOUND)
        wait_for(lambda: " ready." in running.log("housekeeping"), "the housekeeping worker to be ready")
        wait_for(lambda: _answers(running), "the web to answer")
        for program in PROGRAMS:
            wait_for(lambda program=program: running.pid(program), f"{program} to be running")
        yield running
    finally:
        if supervisord.poll() is None:
            supervisord.send_signal(signal.SIGINT)
            try:
                supervisord.wait(90)
            except subprocess.TimeoutExpired:
                os.killpg(supervisord.pid, signal.SIGKILL)
                supervisord.wait()
        for pid in running.pids_seen:  # nothing left behind, even after a failed test
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def _answers(stack: Stack) -> bool:
    try:
        return stack.get("/healthz")[0] == 200
    except OSError:
        return False


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
    # Messages are taken in order: everything before `after` was scored too, except at most the
    # one the killed process held (the filesystem broker deletes a message as it hands it out;
    # beat's sweeper sends that upload again later).
    assert sum(not stack.routed(upload) for upload in burst) <= 1
    assert alive(stack.pid("worker"))


def test_ctrl_c_stops_every_process(stack):
    pids = {program: stack.pid(program) for program in PROGRAMS}
    assert all(pids.values()), pids
    stack.supervisord.send_signal(signal.SIGINT)  # what Ctrl-C sends to `make run`
    assert stack.supervisord.wait(90) == 0
    wait_for(lambda: not any(alive(pid) for pid in stack.pids_seen), "every supervised process to exit", timeout=30)
    output = stack.output.read_text()
    assert "received SIGINT" in output
    # Every process's lines reached the terminal with its name in front.
    for program in PROGRAMS:
        assert f"\n{program.ljust(12)}| " in output, program
