"""The orphan-file sweep on the filesystem storage (S3: tests/moderation/test_s3_storage.py)."""

from __future__ import annotations

import os
import time
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.utils import timezone

from moderation.models import StorageSweep
from moderation.services.display import display_ensure
from moderation.services.storage_sweep import storage_sweep
from tests.conftest import stored_files
from tests.factories import make_upload

pytestmark = pytest.mark.django_db

TWO_HOURS_AGO = time.time() - 2 * 3600


def _age(media_root, *names: str) -> None:
    for name in names:
        os.utime(media_root / name, (TWO_HOURS_AGO, TWO_HOURS_AGO))


@pytest.fixture
def stored(uploader, media_root, settings):
    """A scored-looking upload (original and display), two old orphans, one orphan being written
    right now, and an old file outside Vigil's prefixes."""
    settings.VIGIL_STORAGE_SWEEP_GRACE_SECONDS = 3600
    upload = make_upload(uploader)
    display_ensure(upload=upload)
    upload.refresh_from_db()
    old_original = default_storage.save("originals/ab/ab00dead.jpg", ContentFile(b"orphan original"))
    old_display = default_storage.save("display/ab/ab00dead.webp", ContentFile(b"orphan display"))
    fresh = default_storage.save("originals/cd/cd00beef.jpg", ContentFile(b"an upload being written"))
    elsewhere = default_storage.save("backups/keep.txt", ContentFile(b"not ours"))
    _age(media_root, upload.original.name, upload.display.name, old_original, old_display, elsewhere)
    return {
        "referenced": [upload.original.name, upload.display.name],
        "orphans": [old_original, old_display],
        "fresh": fresh,
        "elsewhere": elsewhere,
    }


def test_dry_run_lists_the_old_orphans_and_deletes_nothing(stored, media_root, capsys):
    before = stored_files(media_root)
    call_command("sweep_storage", "--dry-run")
    out = capsys.readouterr().out
    listed = [line.split("\t")[0] for line in out.splitlines() if "\t" in line]
    assert sorted(listed) == sorted(stored["orphans"])
    assert "5 files scanned, 2 orphans, would delete 2" in out  # backups/ is not looked at
    assert stored_files(media_root) == before
    assert StorageSweep.objects.get().dry_run


def test_the_sweep_deletes_only_unreferenced_files_older_than_the_grace_period(stored, media_root):
    result = storage_sweep()
    assert (result.record.scanned, result.record.orphans, result.record.deleted) == (5, 2, 2)
    assert result.record.deleted_bytes == len(b"orphan original") + len(b"orphan display")
    left = stored_files(media_root)
    assert sorted(left) == sorted([*stored["referenced"], stored["fresh"], stored["elsewhere"]])
    assert storage_sweep().record.deleted == 0  # nothing left to do


def test_a_database_that_references_no_file_deletes_nothing(uploader, media_root, settings):
    name = default_storage.save("originals/ab/ab00dead.jpg", ContentFile(b"x"))
    _age(media_root, name)
    result = storage_sweep()
    assert result.record.orphans == 1 and result.record.deleted == 0
    assert "refused" in result.record.note
    assert (media_root / name).exists()


def test_the_sweep_is_in_the_metrics(stored, client, settings):
    settings.VIGIL_METRICS_TOKEN = "t0ken"
    storage_sweep(dry_run=True)  # dry runs delete nothing and count for nothing
    storage_sweep()
    text = client.get("/metrics", HTTP_AUTHORIZATION="Bearer t0ken").content.decode()
    assert "vigil_storage_orphans_deleted_total 2.0" in text
    assert "vigil_storage_orphans_found 2.0" in text
    last = StorageSweep.objects.filter(dry_run=False).get().finished_at
    exposed = next(line for line in text.splitlines() if line.startswith("vigil_storage_sweep_last_run_timestamp"))
    assert float(exposed.split()[-1]) == pytest.approx(last.timestamp())
    assert last > timezone.now() - timedelta(minutes=5)
