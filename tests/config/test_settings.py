"""Settings are read from the environment and refuse unsafe production values."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def load_settings(tmp_path, **env) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL", "CELERY_"))}
    base.update({"VIGIL_VAR_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "config.settings", **env})
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.DATABASES['default']['ENGINE'], s.CELERY_BROKER_URL)"
    )
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=base, capture_output=True, text=True, timeout=60)


def test_production_refuses_to_start_without_a_secret_key(tmp_path):
    result = load_settings(tmp_path, DJANGO_DEBUG="0")
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is not set" in result.stderr


def test_production_refuses_a_weak_secret_key(tmp_path):
    result = load_settings(tmp_path, DJANGO_DEBUG="0", DJANGO_SECRET_KEY="django-insecure-short")
    assert result.returncode != 0
    assert "too weak" in result.stderr


def test_the_secret_key_messages_state_the_minimum_the_code_checks(tmp_path):
    """The messages say 32 characters, the length the check uses: 31 is refused, 32 starts."""
    missing = load_settings(tmp_path, DJANGO_DEBUG="0")
    short = load_settings(tmp_path, DJANGO_DEBUG="0", DJANGO_SECRET_KEY="k" * 31)
    for result in (missing, short):
        assert result.returncode != 0
        assert "at least 32 characters" in result.stderr and "50+" not in result.stderr
    assert load_settings(tmp_path, DJANGO_DEBUG="0", DJANGO_SECRET_KEY="k" * 32).returncode == 0


def test_production_starts_with_a_real_secret_key(tmp_path):
    result = load_settings(tmp_path, DJANGO_DEBUG="0", DJANGO_SECRET_KEY="k" * 50)
    assert result.returncode == 0, result.stderr


def test_embedded_defaults_are_sqlite_and_filesystem_broker(tmp_path):
    result = load_settings(tmp_path, DJANGO_DEBUG="1")
    assert result.stdout.split() == ["django.db.backends.sqlite3", "filesystem://"]
    assert (tmp_path / "broker" / "queue").is_dir()


def test_database_and_broker_urls_are_honoured(tmp_path):
    result = load_settings(
        tmp_path,
        DJANGO_DEBUG="1",
        DATABASE_URL="postgres://u@db.example:5432/vigil",
        CELERY_BROKER_URL="redis://r:6379/0",
    )
    assert result.stdout.split() == ["django.db.backends.postgresql", "redis://r:6379/0"]


@pytest.mark.parametrize(("name", "value"), [("DJANGO_DEBUG", "maybe"), ("VIGIL_MAX_UPLOAD_BYTES", "lots")])
def test_bad_values_fail_loudly(tmp_path, name, value):
    result = load_settings(tmp_path, **{"DJANGO_DEBUG": "1", name: value})
    assert result.returncode != 0
    assert name in result.stderr


def test_web_path_does_not_import_torch(tmp_path):
    """Heavy ML imports belong to the worker; serving a request must not load them."""
    code = (
        "import sys, django; django.setup(); from django.test import Client; "
        "Client().get('/login/'); Client().get('/api/v1/uploads/'); "
        "import config.urls, moderation.apis, moderation.views, reviews.views, metrics.views; "
        "print(sorted(m for m in ('torch', 'timm', 'onnxruntime', 'torchvision', 'sklearn') if m in sys.modules))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "CELERY_"))}
    env.update({"VIGIL_VAR_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "config.settings", "DJANGO_DEBUG": "1"})
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_production_settings_pass_the_deploy_checks(tmp_path):
    """`manage.py check --deploy` with production settings reports nothing, warnings included."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "CELERY_", "DJANGO_"))}
    env.update(
        {
            "VIGIL_VAR_DIR": str(tmp_path),
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": "x7" * 30 + "-a-real-secret-for-the-deploy-check",
            "DJANGO_ALLOWED_HOSTS": "vigil.example.org",
        }
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def _redis_up() -> bool:
    import socket

    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=1).close()
    except OSError:
        return False
    return True


def _django(tmp_path, code: str, **env) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL", "CELERY_"))}
    base.update({"VIGIL_VAR_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "config.settings", "DJANGO_DEBUG": "1"})
    base.update(env)
    code = "import django; django.setup(); from django.core.cache import cache; " + code
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=base, capture_output=True, text=True, timeout=60)


@pytest.mark.skipif(not _redis_up(), reason="needs Redis on 127.0.0.1:6379")
def test_a_redis_cache_is_shared_between_processes(tmp_path):
    """What makes the upload throttle count across web processes and machines."""
    url = {"VIGIL_CACHE_URL": "redis://127.0.0.1:6379/14"}
    key = f"vigil-test-{os.getpid()}"
    written = _django(tmp_path, f"cache.set({key!r}, 41, 60); cache.incr({key!r})", **url)
    assert written.returncode == 0, written.stderr
    read = _django(tmp_path, f"print(cache.get({key!r})); cache.delete({key!r})", **url)
    assert read.stdout.strip() == "42", read.stderr


def test_a_cache_url_that_is_not_redis_fails_loudly(tmp_path):
    result = _django(tmp_path, "pass", VIGIL_CACHE_URL="memcached://x:11211")
    assert result.returncode != 0 and "VIGIL_CACHE_URL must be a redis://" in result.stderr


def test_the_local_env_file_fills_in_what_the_environment_lacks(tmp_path):
    """`make run` writes var/local.env so manage.py works in a fresh terminal; the environment wins."""
    (tmp_path / "local.env").write_text("# made by make run\nDJANGO_DEBUG=1\n\nDJANGO_SECRET_KEY=" + "s" * 50 + "\n")
    assert load_settings(tmp_path).returncode == 0  # no variable set: the file's development settings
    refused = load_settings(tmp_path, DJANGO_DEBUG="0", DJANGO_SECRET_KEY="django-insecure-short")
    assert refused.returncode != 0 and "too weak" in refused.stderr  # the environment's values win
    (tmp_path / "local.env").write_text("not a setting\n")
    broken = load_settings(tmp_path, DJANGO_DEBUG="1")
    assert broken.returncode != 0 and "local.env:1: expected NAME=VALUE" in broken.stderr
