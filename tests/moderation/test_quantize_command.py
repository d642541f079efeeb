"""manage.py quantize_model and the first install's int8 baseline (bootstrap_demo)."""

from __future__ import annotations

import shutil
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from moderation.models import ModelVersion
from moderation.services.model_versions import (
    BASELINE_NAME,
    model_version_ensure_active,
    model_version_rollback_target,
)

pytestmark = pytest.mark.django_db
INT8 = f"{BASELINE_NAME}-int8"


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=out)
    return out.getvalue()


def test_quantize_model_registers_the_active_versions_int8_sibling(quantizing):
    model_version_ensure_active()
    output = run("quantize_model")
    assert f"registered {INT8} (candidate)" in output
    assert "weapon" in output and "nudity" in output and "max |Δ|" in output and "limit 0.05" in output
    assert ModelVersion.objects.get(status="active").name == BASELINE_NAME
    # Again, naming the int8 version: it stands for its source, and nothing is made twice.
    again = run("quantize_model", INT8, "--shadow")
    assert f"{INT8} is the int8 version of {BASELINE_NAME}" in again and f"already registered: {INT8} (shadow)" in again
    assert ModelVersion.objects.count() == 2


def test_quantize_model_activates_on_request(quantizing):
    model_version_ensure_active()
    output = run("quantize_model", BASELINE_NAME, "--activate")
    assert f"registered {INT8} (active)" in output
    assert model_version_rollback_target().model_version.name == BASELINE_NAME


def test_quantize_model_refuses_clearly(quantizing, settings, tmp_path):
    # A refusal removes int8 files no version uses: this test's own copy of the shared folder.
    shutil.copytree(quantizing, tmp_path / "models")
    settings.VIGIL_MODEL_DIR = tmp_path / "models"
    model_version_ensure_active()
    with pytest.raises(CommandError, match="no model version named 'nope'"):
        run("quantize_model", "nope")
    with pytest.raises(CommandError, match=r"calibration folder .* does not exist"):
        run("quantize_model", "--calibration", str(tmp_path / "missing"))
    settings.VIGIL_QUANTIZE_MAX_SCORE_DIFF = 1e-9
    with pytest.raises(CommandError, match="Nothing was registered; the fp32 version serves as before"):
        run("quantize_model")
    assert list(ModelVersion.objects.values_list("name", flat=True)) == [BASELINE_NAME]


def test_a_fresh_install_serves_the_int8_baseline_and_keeps_fp32_to_roll_back_to(quantizing, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    output = run("bootstrap_demo", "--no-users")
    assert f"Int8 baseline: {INT8} (active)" in output and f"Active model: {INT8}" in output
    assert ModelVersion.objects.get(name=BASELINE_NAME).status == ModelVersion.Status.RETIRED
    assert model_version_rollback_target().model_version.name == BASELINE_NAME
    # Run again (every `make run`): nothing changes, even after an admin went back to fp32.
    call_command("rollback_model", "--reason", "compare", stdout=StringIO())
    again = run("bootstrap_demo", "--no-users")
    assert f"Active model: {BASELINE_NAME}" in again
    assert ModelVersion.objects.get(name=INT8).status == ModelVersion.Status.RETIRED


def test_an_existing_install_gets_an_int8_candidate_not_a_switch(quantizing, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    model_version_ensure_active()  # installed before int8 existed
    output = run("bootstrap_demo", "--no-users")
    assert f"Int8 baseline: {INT8} (candidate)" in output and f"Active model: {BASELINE_NAME}" in output


def test_bootstrap_without_quantizing(quantizing, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    output = run("bootstrap_demo", "--no-users", "--no-quantize")
    assert f"Active model: {BASELINE_NAME}" in output and "Int8" not in output
    assert not ModelVersion.objects.filter(name=INT8).exists()


def test_the_models_page_shows_an_int8_versions_agreement(quantizing, client, admin_user):
    model_version_ensure_active()
    run("quantize_model")
    agreement = ModelVersion.objects.get(name=INT8).config["quantized"]["agreement"]
    client.force_login(admin_user)
    page = client.get(reverse("feedback:models")).content.decode()
    assert f"int8 of {BASELINE_NAME}: max score difference {agreement['max_abs_diff']:.4f} (limit 0.05)" in page
    assert f"{agreement['routed_differently']} of 51 routed differently" in page
