"""The OpenAPI schema is valid without warnings, and schemathesis, run against the live app with a
real token, finds no server error and no response that breaks the schema."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

from accounts.services import api_client_create
from integrations.services.webhooks import webhook_set
from tests.factories import make_upload

ROOT = Path(__file__).resolve().parents[2]


def test_schema_is_valid_without_warnings(tmp_path):
    # --fail-on-warn exits non-zero on any warning, --validate checks it against the OpenAPI spec.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yml"))
    assert "/api/v1/uploads/" in (tmp_path / "schema.yml").read_text()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_schemathesis_finds_no_server_errors_and_no_schema_violations(live_server, tmp_path):
    client, token = api_client_create(name="fuzzer")
    make_upload(client.user)  # something to list and fetch
    webhook_set(client=client, url="https://hooks.example.com/vigil")  # something to read and rotate
    schemathesis = Path(sys.executable).with_name("schemathesis")
    result = subprocess.run(
        [
            str(schemathesis),
            "run",
            f"{live_server.url}/api/v1/schema/",
            "--header",
            f"Authorization: Token {token}",
            "--checks",
            "all",
            # Random bytes are never a decodable image, so "a schema-valid request must be
            # accepted" cannot hold for an image upload; every other check runs.
            "--exclude-checks",
            "positive_data_acceptance",
            "--max-examples",
            "25",
            "--seed",
            "1",
            "--report-junit-path",
            str(tmp_path / "schemathesis.xml"),
        ],
        cwd=ROOT,
        env={**os.environ, "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "No issues found" in result.stdout or "passed" in result.stdout
