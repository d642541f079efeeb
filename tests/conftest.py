from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from accounts.roles import Role
from accounts.services import api_client_create
from tests.factories import make_user


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    """Every test stores files in its own folder, so tests can assert what is on disk."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.MEDIA_ROOT.mkdir()
    return settings.MEDIA_ROOT


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """Factories create many users; the production hasher is slow on purpose."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def fresh_metrics(settings):
    """Admin pages recompute window figures as soon as the roll-ups change."""
    settings.VIGIL_METRICS_MAX_STALENESS = 0


@pytest.fixture(autouse=True)
def no_quantize_at_registration(settings):
    """Registering a version quantizes it (a minute for the baseline); the tests that are about
    that turn it on (tests/moderation/ml/test_quantize.py)."""
    settings.VIGIL_QUANTIZE_AT_REGISTRATION = False


@pytest.fixture(autouse=True)
def no_audit_sampling(settings):
    """Audit sampling picks uploads by a hash of their random id; tests that want it turn it on."""
    settings.VIGIL_AUDIT_APPROVED_RATE = 0.0
    settings.VIGIL_AUDIT_REJECTED_RATE = 0.0


def stored_files(root) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


@pytest.fixture
def uploader(db):
    return make_user(Role.UPLOADER, "uploader")


@pytest.fixture
def moderator(db):
    return make_user(Role.MODERATOR, "moderator")


@pytest.fixture
def admin_user(db):
    return make_user(Role.ADMIN, "admin")


@pytest.fixture
def api_client_and_token(db):
    return api_client_create(name="acme")


@pytest.fixture
def api(api_client_and_token) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_client_and_token[1]}")
    return client


def pytest_report_header(config) -> list[str]:
    from django.conf import settings

    db = settings.DATABASES["default"]
    return [f"vigil: database {db['ENGINE'].rsplit('.', 1)[-1]}, broker {settings.CELERY_BROKER_URL.split('://')[0]}"]


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    """A small labelled ImageFolder (train/ and val/, safe/ and harmful/) of real photo crops."""
    from tests.images import labelled_folder

    root = tmp_path_factory.mktemp("tiny-dataset")
    labelled_folder(root, train=10, val=5)
    return root


def tiny_train_config(data, out, **overrides):
    from moderation.ml.train import TrainConfig

    # Lite0 at 128 px: the fastest real backbone, so the whole trainer runs in seconds.
    options = {
        "backbone": "efficientnet_lite0",
        "epochs": 6,
        "patience": 3,
        "aug_views": 1,
        "batch_size": 8,
        "image_size": 128,
        "progress": False,
        "suggest_min_per_class": 2,  # five val images a class: enough to exercise suggestions, not to trust them
    }
    return TrainConfig(data=str(data), out=str(out), **{**options, **overrides})


@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_dataset, tmp_path_factory):
    """A model fine-tuned once per test session on :func:`tiny_dataset` (a few seconds on a CPU)."""
    from moderation.ml.train import train

    return train(tiny_train_config(tiny_dataset, tmp_path_factory.mktemp("tiny-run"))).checkpoint


@pytest.fixture
def receiver():
    """A real HTTP server on 127.0.0.1 (tests/http_receiver.py)."""
    from tests.http_receiver import Receiver

    with Receiver() as server:
        yield server


@pytest.fixture
def allow_loopback(db):
    """Admins allow-list 127.0.0.1, so outbound requests may reach the test receiver."""
    from integrations.models import AllowedNetwork

    return AllowedNetwork.objects.create(network="127.0.0.1/32", note="test receiver")


def rewritten_checkpoint(source, target, *, drop=(), **changes):
    """A copy of checkpoint ``source`` with top-level keys changed or dropped (``drop``), e.g. an
    older checkpoint's layout or another temperature."""
    import torch

    payload = torch.load(source, map_location="cpu", weights_only=True)
    for key in drop:
        payload.pop(key)
    payload.update(changes)
    torch.save(payload, target)
    return target


@pytest.fixture(scope="session")
def int8_model_dir(tmp_path_factory):
    """A model folder shared by the quantization tests: the baseline is quantized once per session
    and later tests reuse its int8 files (the quantization cache), registering them again."""
    return tmp_path_factory.mktemp("int8-models")


@pytest.fixture
def quantizing(settings, monkeypatch, int8_model_dir):
    """Quantization on, into :func:`int8_model_dir`, calibrated on 28 images instead of 120."""
    from functools import cache

    from moderation.ml.quantize import builtin_calibration_images
    from moderation.services import quantization

    settings.VIGIL_MODEL_DIR = int8_model_dir
    settings.VIGIL_QUANTIZE_AT_REGISTRATION = True
    monkeypatch.setattr(
        quantization, "builtin_calibration_images", cache(lambda: builtin_calibration_images(views=2, drawings=6))
    )
    return int8_model_dir
