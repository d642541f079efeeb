"""bootstrap_demo prints where to sign in: the port `make run` actually serves (VIGIL_PORT)."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from moderation.management.commands import bootstrap_demo
from tests.factories import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_model(monkeypatch, settings, tmp_path):
    """The model and the policy are not what these tests are about."""
    settings.VAR_DIR = tmp_path
    model = type("M", (), {"name": "baseline", "config": {}})()
    monkeypatch.setattr(bootstrap_demo, "model_version_ensure_active", lambda: model)
    monkeypatch.setattr(bootstrap_demo, "model_version_export_serving", lambda **kwargs: None)
    monkeypatch.setattr(bootstrap_demo, "policy_current", lambda: type("P", (), {"version": 1})())
    make_user(username="placeholder")  # the users table exists


def run() -> str:
    out = StringIO()
    call_command("bootstrap_demo", stdout=out)
    return out.getvalue()


def test_the_sign_in_url_names_the_port_served(monkeypatch):
    monkeypatch.setenv("VIGIL_PORT", "8123")
    assert "http://127.0.0.1:8123/login/" in run()


def test_the_default_port_is_8000(monkeypatch):
    monkeypatch.delenv("VIGIL_PORT", raising=False)
    output = run()
    assert "http://127.0.0.1:8000/login/" in output
    assert "admin" in output and "moderator" in output
