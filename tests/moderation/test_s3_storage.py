"""Stored images on S3-compatible object storage, configured by environment variables alone.

A real S3 API on loopback: moto's server, started as a separate process. The default storage used
here is the one ``config/settings.py`` builds from ``VIGIL_STORAGE=s3`` and the ``VIGIL_S3_*``
variables (read from a settings import in a subprocess), pointed at a fresh bucket per test.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
import zipfile
from pathlib import Path

import boto3
import pytest
from django.core.management import call_command
from django.urls import reverse

from feedback.services.export import ExportFilters, export_imagefolder
from moderation.models import Upload
from moderation.services.policies import policy_create
from moderation.services.scoring import upload_score
from reviews.models import ReviewRound
from reviews.services.claims import round_claim
from reviews.services.decisions import decision_create
from tests.conftest import stored_files
from tests.images import photo_jpeg, solid

ROOT = Path(__file__).resolve().parents[2]
KEY_ID, SECRET = "vigil-test-key", "vigil-test-secret"
PREFIX = "vigil/media"
QUEUE_EVERYTHING = {
    "weapon": {"approve_below": 0.0, "reject_from": 1.0},
    "nudity": {"approve_below": 0.0, "reject_from": 1.0},
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def s3_endpoint():
    """moto's S3 server in its own process on 127.0.0.1; its URL."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/moto-api/", timeout=2):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto's S3 server did not start") from None
                time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _clean_env(tmp_path, **env) -> dict[str, str]:
    prefixes = ("DJANGO_", "DATABASE_URL", "CELERY_", "VIGIL_", "AWS_")
    base = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    base.update({"VIGIL_VAR_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "config.settings", "DJANGO_DEBUG": "1"})
    base.update(env)
    return base


def load_storage(tmp_path, **env) -> subprocess.CompletedProcess:
    """Import the settings with ``env`` and build the default storage (no request is sent)."""
    code = (
        "import json, django; django.setup(); from django.conf import settings; "
        "from django.core.files.storage import default_storage as d; d._setup(); "
        "print(json.dumps({'default': settings.STORAGES['default'], 'class': type(d._wrapped).__name__, "
        "'access_key': getattr(d, 'access_key', None)}))"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=_clean_env(tmp_path, **env),
        capture_output=True,
        text=True,
        timeout=60,
    )


def s3_env(endpoint: str) -> dict[str, str]:
    return {
        "VIGIL_STORAGE": "s3",
        "VIGIL_S3_BUCKET": "vigil-media",
        "VIGIL_S3_ENDPOINT_URL": endpoint,
        "VIGIL_S3_REGION": "us-east-1",
        "VIGIL_S3_ACCESS_KEY_ID": KEY_ID,
        "VIGIL_S3_SECRET_ACCESS_KEY": SECRET,
        "VIGIL_S3_PREFIX": f"/{PREFIX}/",
    }


@pytest.fixture(scope="module")
def s3_storage_setting(s3_endpoint, tmp_path_factory):
    """``STORAGES['default']`` exactly as the settings build it for VIGIL_STORAGE=s3."""
    result = load_storage(tmp_path_factory.mktemp("s3-settings"), **s3_env(s3_endpoint))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])["default"]


@pytest.fixture
def bucket(s3_endpoint, s3_storage_setting, settings):
    """A fresh, empty bucket that the default storage now writes to; a boto3 Bucket to inspect it."""
    name = f"vigil-{uuid.uuid4().hex[:12]}"
    s3 = boto3.resource(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id=KEY_ID,
        aws_secret_access_key=SECRET,
    )
    s3.create_bucket(Bucket=name)
    default = {**s3_storage_setting, "OPTIONS": {**s3_storage_setting["OPTIONS"], "bucket_name": name}}
    # Django's setting_changed receiver drops the cached storages, so default_storage is rebuilt.
    settings.STORAGES = {**settings.STORAGES, "default": default}
    return s3.Bucket(name)


def keys(bucket) -> set[str]:
    return {obj.key for obj in bucket.objects.all()}


def body(bucket, key: str) -> bytes:
    return bucket.Object(key).get()["Body"].read()


# --- settings ---------------------------------------------------------------------------------


def test_filesystem_is_the_default(tmp_path):
    result = load_storage(tmp_path)
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert loaded["default"] == {"BACKEND": "django.core.files.storage.FileSystemStorage"}
    assert loaded["class"] == "FileSystemStorage"


def test_s3_settings_come_from_the_environment(tmp_path):
    result = load_storage(tmp_path, **s3_env("http://127.0.0.1:9"))
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert loaded["default"] == {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": "vigil-media",
            "location": PREFIX,
            "default_acl": None,
            "file_overwrite": False,
            "querystring_auth": False,
            "endpoint_url": "http://127.0.0.1:9",
            "region_name": "us-east-1",
            "access_key": KEY_ID,
            "secret_key": SECRET,
        },
    }
    assert (loaded["class"], loaded["access_key"]) == ("S3Storage", KEY_ID)


def test_without_vigil_keys_the_standard_aws_chain_is_used(tmp_path):
    result = load_storage(
        tmp_path, VIGIL_STORAGE="s3", VIGIL_S3_BUCKET="b", AWS_ACCESS_KEY_ID="from-aws-env", AWS_SECRET_ACCESS_KEY="s"
    )
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(loaded["default"]["OPTIONS"]) == {
        "bucket_name",
        "location",
        "default_acl",
        "file_overwrite",
        "querystring_auth",
    }
    assert loaded["access_key"] == "from-aws-env"


def test_manage_py_check_passes_with_s3(tmp_path):
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=_clean_env(tmp_path, **s3_env("http://127.0.0.1:9")),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"VIGIL_STORAGE": "s3"}, "VIGIL_S3_BUCKET"),
        ({"VIGIL_STORAGE": "ftp"}, "VIGIL_STORAGE='ftp'"),
        ({"VIGIL_STORAGE": "s3", "VIGIL_S3_BUCKET": "b", "VIGIL_S3_ACCESS_KEY_ID": "k"}, "VIGIL_S3_SECRET_ACCESS_KEY"),
        ({"VIGIL_STORAGE": "s3", "VIGIL_S3_BUCKET": "b", "VIGIL_S3_ADDRESSING_STYLE": "x"}, "ADDRESSING_STYLE"),
    ],
    ids=["no-bucket", "unknown-backend", "half-a-key", "bad-addressing-style"],
)
def test_bad_storage_settings_fail_loudly(tmp_path, env, message):
    result = load_storage(tmp_path, **env)
    assert result.returncode != 0
    assert message in result.stderr


# --- the application on object storage -------------------------------------------------------


@pytest.mark.slow
@pytest.mark.django_db
def test_upload_score_review_and_export_through_object_storage(
    bucket, api, moderator, admin_user, client, media_root, tmp_path
):
    data = photo_jpeg("chelsea")
    response = api.post("/api/v1/uploads/", {"image": _file(data)}, format="multipart")
    assert response.status_code == 201, response.content
    upload = Upload.objects.get()
    assert upload.original.name.startswith("originals/") and upload.display.name == ""
    assert keys(bucket) == {f"{PREFIX}/{upload.original.name}"}
    assert body(bucket, f"{PREFIX}/{upload.original.name}") == data
    assert stored_files(media_root) == []  # nothing on the local disk

    # The worker reads the original from the bucket and scores it.
    policy_create(thresholds=QUEUE_EVERYTHING, reason="route to humans", created_by=admin_user)
    result = upload_score(upload_id=upload.pk)
    upload.refresh_from_db()
    assert result.routed_now and upload.status == "queued" and upload.score.harmful_score < 0.01
    # Sent to humans, so the worker made the display derivative, in the bucket too.
    assert upload.display.name.startswith("display/")
    assert keys(bucket) == {f"{PREFIX}/{upload.original.name}", f"{PREFIX}/{upload.display.name}"}

    # Moderators get the images through the authorised views, streamed from the bucket.
    client.force_login(moderator)
    display = client.get(reverse("moderation:upload_image", args=[upload.pk]))
    assert display.status_code == 200
    assert b"".join(display.streaming_content) == body(bucket, f"{PREFIX}/{upload.display.name}")
    assert display["Content-Type"] == "image/webp" and display["X-Content-Type-Options"] == "nosniff"
    assert int(display["Content-Length"]) == bucket.Object(f"{PREFIX}/{upload.display.name}").content_length
    original = client.get(reverse("moderation:upload_original", args=[upload.pk]))
    assert original.status_code == 200 and b"".join(original.streaming_content) == data

    # The admin links to those views; the storage is never asked for a URL.
    client.force_login(admin_user)
    page = client.get(reverse("admin:moderation_upload_change", args=[upload.pk])).content.decode()
    assert reverse("moderation:upload_image", args=[upload.pk]) in page
    assert "127.0.0.1:" not in page and bucket.name not in page

    # A decision, then the feedback export copies the image out of the bucket.
    round_ = ReviewRound.objects.get(upload=upload, status=ReviewRound.Status.OPEN)
    round_claim(round_id=round_.pk, moderator=moderator)
    decision_create(round_id=round_.pk, moderator=moderator, label="safe")
    summary = export_imagefolder(tmp_path / "folder", ExportFilters(), val_fraction=0)
    assert summary.by_split_label == {"train/safe": 1}
    exported = tmp_path / "folder" / "train" / "safe" / f"{upload.sha256}.jpg"
    assert exported.read_bytes() == data
    call_command("export_feedback", str(tmp_path / "all.zip"), "--format", "zip", "--val-fraction", "0")
    with zipfile.ZipFile(tmp_path / "all.zip") as archive:
        assert archive.read(f"train/safe/{upload.sha256}.jpg") == data
    assert hashlib.sha256(data).hexdigest() == upload.sha256


@pytest.mark.django_db
def test_a_rejected_upload_leaves_no_object(bucket, api):
    response = api.post("/api/v1/uploads/", {"image": _file(solid((300, 300))[:200])}, format="multipart")
    assert response.status_code == 400
    assert "corrupt or truncated" in json.dumps(response.json())
    assert not Upload.objects.exists() and keys(bucket) == set()


@pytest.mark.django_db
def test_a_database_error_after_saving_removes_the_objects(bucket, api, monkeypatch):
    def broken_create(**kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(Upload.objects, "create", broken_create)
    with pytest.raises(RuntimeError):
        api.post("/api/v1/uploads/", {"image": _file(solid())}, format="multipart")
    assert keys(bucket) == set()


@pytest.mark.slow
@pytest.mark.django_db
def test_an_object_gone_from_the_bucket_sends_the_upload_to_humans(bucket, api):
    assert api.post("/api/v1/uploads/", {"image": _file(photo_jpeg("coffee"))}, format="multipart").status_code == 201
    upload = Upload.objects.get()
    bucket.Object(f"{PREFIX}/{upload.original.name}").delete()
    upload_score(upload_id=upload.pk)
    upload.refresh_from_db()
    assert upload.status == "failed" and "the stored original is missing" in upload.status_reason


def _file(data: bytes):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile("photo.jpg", data, content_type="image/jpeg")


@pytest.mark.django_db
def test_the_storage_sweep_removes_only_old_orphans_from_the_bucket(bucket, api):
    from moderation.services.storage_sweep import storage_sweep

    assert api.post("/api/v1/uploads/", {"image": _file(solid())}, format="multipart").status_code == 201
    upload = Upload.objects.get()
    bucket.put_object(Key=f"{PREFIX}/originals/ab/ab00dead.jpg", Body=b"orphan")
    bucket.put_object(Key=f"{PREFIX}/display/ab/ab00dead.webp", Body=b"orphan")
    bucket.put_object(Key="elsewhere/originals/x.jpg", Body=b"outside the prefix")
    everything = keys(bucket)

    # Nothing is older than an hour: nothing is touched.
    assert storage_sweep().record.orphans == 0 and keys(bucket) == everything
    # Grace 0: every file is old enough; the dry run names the orphans as the database would.
    dry = storage_sweep(dry_run=True, grace_seconds=0)
    assert sorted(f.name for f in dry.orphans) == ["display/ab/ab00dead.webp", "originals/ab/ab00dead.jpg"]
    assert dry.record.scanned == 3 and keys(bucket) == everything
    assert storage_sweep(grace_seconds=0).record.deleted == 2
    assert keys(bucket) == {f"{PREFIX}/{upload.original.name}", "elsewhere/originals/x.jpg"}
