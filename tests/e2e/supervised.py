"""The real supervised stack, as `make run` starts it: supervisord with config/supervisord.conf
(web, scoring worker, housekeeping worker, trainer, beat) in a temporary VIGIL_VAR_DIR on a free
port. Embedded defaults (SQLite, filesystem broker) unless ``env`` names other servers.

Every wait polls a condition with a generous bound: the suite runs on loaded 2-core machines."""

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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

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


def jpeg(n: int, size: tuple[int, int] = (96, 64)) -> bytes:
    image = io.BytesIO()
    Image.new("RGB", size, ((n * 37) % 256, (n * 91) % 256, (n * 53) % 256)).save(image, "JPEG")
    return image.getvalue()


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

    def post_file(self, content: bytes, filename: str, content_type: str, timeout: float = 60) -> tuple[int, bytes]:
        """POST a file to /api/v1/uploads/: (status, body). Connection errors raise OSError."""
        boundary = uuid.uuid4().hex
        body = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{filename}"\r\n'
                f"Content-Type: {content_type}\r\n\r\n"
            ).encode()
            + content
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
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def upload(self, n: int) -> str:
        status, body = self.post_file(jpeg(n), f"{n}.jpg", "image/jpeg", timeout=30)
        assert status == 201, body
        return json.loads(body)["id"]

    def status_of(self, upload_id: str) -> str:
        status, body = self.get(f"/api/v1/uploads/{upload_id}/")
        assert status == 200, body
        return json.loads(body)["status"]

    def routed(self, upload_id: str) -> bool:
        return self.status_of(upload_id) not in ("pending", "fetching")

    def stop(self, timeout: float = 90) -> int:
        """Ctrl-C: stop every process and wait for supervisord to exit."""
        if self.supervisord.poll() is None:
            self.supervisord.send_signal(signal.SIGINT)
        return self.supervisord.wait(timeout)


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


def _answers(stack: Stack) -> bool:
    try:
        return stack.get("/healthz")[0] == 200
    except OSError:
        return False


def stack_env(var: Path, port: int, extra: dict[str, str] | None = None) -> dict[str, str]:
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
        **(extra or {}),
    )
    return env


@contextmanager
def supervised_stack(
    var: Path, *, env: dict[str, str] | None = None, client: str = "supervision-test"
) -> Iterator[Stack]:
    """Migrate, bootstrap and start the supervised stack in ``var``; on exit, stop it as Ctrl-C does
    and kill whatever it left behind. ``env`` adds settings (DATABASE_URL, CELERY_BROKER_URL...)."""
    (var / "log").mkdir(parents=True, exist_ok=True)
    port = free_port()
    environment = stack_env(var, port, env)
    manage(environment, "migrate", "--noinput")
    manage(environment, "bootstrap_demo", "--no-users", "--no-quantize")  # the model is not what these test
    token = manage(environment, "create_api_client", client).strip().splitlines()[-1]

    output = var / "log" / "terminal.txt"
    with output.open("w") as terminal:
        supervisord = subprocess.Popen(
            [str(BIN / "supervisord"), "-c", str(CONF)],
            cwd=ROOT,
            env=environment,
            stdout=terminal,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, like `make run` in a terminal
        )
    running = Stack(env=environment, var=var, port=port, token=token, supervisord=supervisord, output=output)
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
