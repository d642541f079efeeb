"""Orphan files: stored files that no database row references, left by a process stopped between
writing a file and committing its row (intake, a URL fetch), by a worker killed between saving a
display derivative and recording it (or removing the one it replaced), or by an Upload row
deleted in the admin.

Safe by construction:
- only the prefixes Vigil writes (``originals/``, ``display/``) are looked at, nothing else in the
  bucket or folder;
- a file newer than ``VIGIL_STORAGE_SWEEP_GRACE_SECONDS`` is never touched (an upload being
  written: its row commits after the file), by the storage's own modification time;
- a file is an orphan only if no ``Upload.original`` or ``Upload.display`` names it, checked in
  the database again right before each batch is deleted;
- a database that references no stored file at all while old files exist (an empty or wrong
  database pointed at a shared bucket) deletes nothing and says so.

Works on any Django storage: a listing with modification times in one request per 1000 objects on
S3 (django-storages' ``S3Storage``), ``os.scandir`` on the filesystem, ``listdir`` otherwise.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.files.storage import Storage, default_storage
from django.core.files.storage.filesystem import FileSystemStorage
from django.utils import timezone

from media.frames import batched
from moderation.models import StorageSweep, Upload

logger = logging.getLogger(__name__)

PREFIXES = ("originals/", "display/")
BATCH = 500


@dataclass(frozen=True)
class StoredFile:
    name: str
    modified: datetime
    size: int


@dataclass
class SweepResult:
    record: StorageSweep
    orphans: list[StoredFile] = field(default_factory=list)


def _s3_files(storage, prefix: str) -> Iterator[StoredFile]:
    location = storage.location.strip("/")
    for obj in storage.bucket.objects.filter(Prefix=f"{location}/{prefix}" if location else prefix):
        name = obj.key[len(location) + 1 :] if location else obj.key
        yield StoredFile(name, obj.last_modified, obj.size)


def _filesystem_files(storage: FileSystemStorage, prefix: str) -> Iterator[StoredFile]:
    root = storage.path("")
    stack = [os.path.join(root, prefix)]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except FileNotFoundError:
            continue
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                stack.append(entry.path)
            elif entry.is_file(follow_symlinks=False):
                stat = entry.stat(follow_symlinks=False)
                name = os.path.relpath(entry.path, root).replace(os.sep, "/")
                yield StoredFile(name, datetime.fromtimestamp(stat.st_mtime, tz=UTC), stat.st_size)


def _listed_files(storage: Storage, prefix: str) -> Iterator[StoredFile]:
    directories, files = storage.listdir(prefix)
    for name in files:
        path = f"{prefix}{name}"
        yield StoredFile(path, storage.get_modified_time(path), storage.size(path))
    for directory in directories:
        yield from _listed_files(storage, f"{prefix}{directory}/")


def stored_files(storage: Storage, prefix: str) -> Iterator[StoredFile]:
    """Every file under ``prefix``, with its modification time and size."""
    if hasattr(storage, "bucket") and hasattr(storage, "location"):
        return _s3_files(storage, prefix)
    if isinstance(storage, FileSystemStorage):
        return _filesystem_files(storage, prefix)
    return _listed_files(storage, prefix)


def names_referenced(names: list[str]) -> set[str]:
    """Those of ``names`` that an upload row points at (its original or display derivative)."""
    return set(Upload.objects.filter(original__in=names).values_list("original", flat=True)) | set(
        Upload.objects.filter(display__in=names).values_list("display", flat=True)
    )


def storage_sweep(
    *, dry_run: bool = False, grace_seconds: int | None = None, storage: Storage | None = None
) -> SweepResult:
    """Find (and unless ``dry_run``, delete) orphan files older than the grace period. The run is
    recorded as a :class:`StorageSweep` row, which ``/metrics`` reads."""
    storage = storage or default_storage
    grace = settings.VIGIL_STORAGE_SWEEP_GRACE_SECONDS if grace_seconds is None else grace_seconds
    started = timezone.now()
    cutoff = started - timedelta(seconds=grace)
    result = SweepResult(StorageSweep(dry_run=dry_run, started_at=started))
    record = result.record
    for prefix in PREFIXES:
        try:
            for batch in batched(stored_files(storage, prefix), BATCH):
                record.scanned += len(batch)
                old = [f for f in batch if f.modified < cutoff]
                referenced = names_referenced([f.name for f in old]) if old else set()
                result.orphans += [f for f in old if f.name not in referenced]
        except Exception:
            logger.exception("could not list %s in the storage", prefix)
            record.errors += 1
    record.orphans = len(result.orphans)
    if result.orphans and not Upload.objects.exclude(original="").exists():
        record.note = "refused: the database references no stored file (an empty or wrong database?)"
        logger.error("storage sweep: %s; %d old files left alone", record.note, record.orphans)
    elif not dry_run:
        _delete(result, storage)
    record.finished_at = timezone.now()
    record.save()
    logger.info(
        "storage sweep%s: %d files, %d orphans older than %d s, %d deleted",
        " (dry run)" if dry_run else "",
        record.scanned,
        record.orphans,
        grace,
        record.deleted,
    )
    return result


def _delete(result: SweepResult, storage: Storage) -> None:
    record = result.record
    for batch in batched(result.orphans, BATCH):
        referenced = names_referenced([f.name for f in batch])  # again: a row may have appeared since
        for orphan in batch:
            if orphan.name in referenced:
                continue
            try:
                storage.delete(orphan.name)
            except Exception:
                logger.exception("could not delete orphan %s", orphan.name)
                record.errors += 1
                continue
            record.deleted += 1
            record.deleted_bytes += orphan.size
