"""Every command README.md shows, as written, on a fresh clone, in a terminal with no variables
set: after `make run`'s setup (var/local.env, migrate, bootstrap_demo) and with the web and the
scoring worker running as supervisord starts them. Commands come from README's ```sh blocks, so
a command added there is run here, or named in SKIPPED with the reason."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.images import solid

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SKIPPED = {
    "make run": "its setup half is `make setup`, run first; its processes are started below as supervisord does",
    "make test": "this suite",
    "export ": "production settings, for a deployment",
    "manage.py train ": "needs a labelled photo folder and minutes of training",
    "manage.py evaluate ": "needs the weapons-v2 model the train command registers",
    "manage.py classify ": "needs the weapons-v2 model the train command registers",
    "manage.py activate_model ": "needs the weapons-v2 model the train command registers",
    "manage.py quantize_model weapons-v2": "needs the weapons-v2 model the train command registers",
}
# Commands that must refuse on a fresh install, saying why, not crash. (rollback_model does not:
# a fresh install serves the int8 baseline, and the fp32 baseline is there to roll back to.)
REFUSES_CLEANLY: dict[str, str] = {}


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        for command in block.replace("\\\n", " ").splitlines():
            command = re.sub(r"\s{2,}#.*$", "", command).strip()
            if command:
                commands.append(command)
    return commands


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(condition, *, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(0.2)
    return value


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture
def clone(tmp_path):
    """A fresh clone of this commit, sharing the suite's virtual environment (a symlink)."""
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True)
    target = tmp_path / "vigil"
    subprocess.run(["git", "clone", "-q", "--no-checkout", str(ROOT), str(target)], check=True)
    subprocess.run(["git", "checkout", "-q", head.stdout.strip()], cwd=target, check=True)
    (target / ".venv").symlink_to(ROOT / ".venv")
    return target


def test_every_readme_command_works_as_written_on_a_fresh_clone(clone, tmp_path):
    port = free_port()
    bare = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8"}

    def sh(command: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["bash", "-c", command], cwd=clone, env=env or bare, capture_output=True, text=True, timeout=timeout
        )

    # `make run` up to serving; -o: the shared .venv is installed already (a fresh clone's
    # requirements.txt is newer than its stamp).
    setup = sh(f"VIGIL_PORT={port} make -o .venv/.runtime-installed setup")
    assert setup.returncode == 0, setup.stdout + setup.stderr
    assert f"http://127.0.0.1:{port}/login/" in setup.stdout
    assert "DJANGO_SECRET_KEY=" in (clone / "var" / "local.env").read_text()

    # The web and the scoring worker, as config/supervisord.conf starts them.
    served = {**bare, "PATH": f"{clone}/.venv/bin:{bare['PATH']}", "VIGIL_PORT": str(port)}
    processes = [
        subprocess.Popen(
            ["python", "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
            cwd=clone,
            env=served,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ),
        subprocess.Popen(
            [
                "celery",
                "-A",
                "config",
                "worker",
                "--queues=scoring,fetch,webhooks",
                "--pool=threads",
                "--concurrency=1",
                "--hostname=readme@%h",
            ],
            cwd=clone,
            env=served,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ),
    ]
    try:
        wait_for(lambda: answers(f"http://127.0.0.1:{port}/healthz"), timeout=120, what="the web server")
        (clone / "photo.jpg").write_bytes(solid(color=(30, 120, 200)))
        (clone / "photos" / "beach").mkdir(parents=True)
        (clone / "photos" / "a.jpg").write_bytes(solid(color=(200, 120, 30)))
        (clone / "photos" / "beach" / "b.jpg").write_bytes(solid(color=(20, 220, 30)))

        commands = readme_commands()
        # create_user makes the alice that import_images names; run it first.
        commands.sort(key=lambda c: "create_user" not in c)
        token, upload_id, ran, skipped = "", "", [], []
        for command in commands:
            reason = next((why for start, why in SKIPPED.items() if start in command), None)
            if reason:
                skipped.append((command, reason))
                continue
            # The README says: another port (VIGIL_PORT) replaces 8000; <id> is the upload's id.
            typed = command.replace("127.0.0.1:8000", f"127.0.0.1:{port}").replace("<id>", upload_id)
            result = sh(typed, {**bare, "TOKEN": token}, timeout=660)
            output = result.stdout + result.stderr
            refusal = next((msg for start, msg in REFUSES_CLEANLY.items() if start in command), None)
            if refusal:
                assert result.returncode != 0 and "Traceback" not in output, (command, output)
                ran.append(command)
                continue
            assert result.returncode == 0, (command, output)
            assert "Traceback" not in output, (command, output)
            if "create_api_client" in command:
                token = result.stdout.strip().splitlines()[-1]
            if command.startswith("curl") and "-F image=" in command:
                upload_id = json.loads(result.stdout)["id"]
            if command.startswith("curl"):
                assert json.loads(result.stdout)["id"] == upload_id, (command, output)
            if "import_images" in command:
                assert "submitted" in output and "2" in output, output
            ran.append(command)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
    assert token and upload_id
    names = " ".join(ran)
    for expected in ("create_api_client", "curl", "import_images", "create_user", "list_models", "export_serving"):
        assert expected in names, f"{expected} was not run: {ran}"
    print("\nran:", *ran, "\nskipped:", *(f"{c}  ({why})" for c, why in skipped), sep="\n  ")
