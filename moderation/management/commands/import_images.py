"""``manage.py import_images DIR``: submit a folder of images and videos, as a platform would, with
a summary.

Every file goes through the same intake as the API (``upload_create``), so it is validated,
stored and scored the same way. Each file's ``external_id`` is ``import:<path relative to DIR>``
(a hash for an over-long or non-UTF-8 path), so running the command again skips what it already
imported.
"""

from __future__ import annotations

import hashlib
import io
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from accounts.models import ApiClient
from moderation.models import Upload
from moderation.services.intake import UploadRejected, upload_create

EXTERNAL_ID_PREFIX = "import:"
EXTERNAL_ID_MAX = 255  # Upload.external_id
POLL_SECONDS = 1.0  # how often --wait looks at the database
WAIT_BATCH = 500  # ids per query (SQLite limits query parameters)
SUMMARY_KEYS = ("submitted", "already imported", "rejected")
OUTCOMES = (Upload.Status.APPROVED, Upload.Status.REJECTED, Upload.Status.QUEUED, Upload.Status.FAILED)


def import_key(relative: str) -> tuple[str, str]:
    """(external_id, the path as shown and stored in metadata) for a path relative to DIR.

    A path too long for ``external_id``, or not valid UTF-8, keeps a readable prefix followed by
    ``#`` and the sha256 of its bytes: still one fixed id per file, so reruns stay idempotent."""
    raw = os.fsencode(relative)
    shown = raw.decode("utf-8", errors="replace")
    external_id = EXTERNAL_ID_PREFIX + shown
    if shown != relative or len(external_id) > EXTERNAL_ID_MAX:
        digest = hashlib.sha256(raw).hexdigest()
        keep = EXTERNAL_ID_MAX - len(EXTERNAL_ID_PREFIX) - 1 - len(digest)
        external_id = f"{EXTERNAL_ID_PREFIX}{shown[:keep]}#{digest}"
    return external_id, shown


@dataclass
class Listing:
    files: list[tuple[Path, str]] = field(default_factory=list)  # (path, relative POSIX path)
    hidden: int = 0
    not_files: int = 0
    folders_not_searched: int = 0


def list_files(root: Path, *, recursive: bool) -> Listing:
    """Regular files under ``root`` in a stable order, skipping hidden files and hidden folders.

    Without ``recursive`` only ``root``'s own files count. Symbolic links to files are followed;
    links to folders are not (no loops)."""
    listing = Listing()
    for folder, subfolders, names in os.walk(root):
        here = Path(folder)
        visible = sorted(d for d in subfolders if not d.startswith("."))
        listing.hidden += len(subfolders) - len(visible)
        if recursive:
            subfolders[:] = visible
        else:
            listing.folders_not_searched += len(visible)
            subfolders[:] = []
        for name in sorted(names):
            path = here / name
            if name.startswith("."):
                listing.hidden += 1
            elif not path.is_file():
                listing.not_files += 1
            else:
                listing.files.append((path, path.relative_to(root).as_posix()))
    listing.files.sort(key=lambda item: item[1])
    return listing


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


class Command(BaseCommand):
    help = (
        "Submit every image and video file in DIR through the normal intake (validated, stored, scored by the worker) "
        "with a progress bar and a summary. Each file's external_id is 'import:<path relative to DIR>', so "
        "running it again only adds new files. Hidden files and folders are skipped; other files are judged "
        "by their content, not their name. Exit status: 0 when every file was accepted or already imported; "
        "1 when some files were rejected (listed with the reason); 2 when --wait timed out."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("dir", help="folder of images and videos")
        parser.add_argument(
            "--user",
            help="username of the submitter (default: the user of the only API client; required when there is "
            "none or more than one)",
        )
        parser.add_argument("--recursive", action="store_true", help="also import the files in subfolders")
        parser.add_argument(
            "--wait",
            action="store_true",
            help="then wait until every imported upload has been scored and print the outcome counts "
            "(needs a running worker)",
        )
        parser.add_argument(
            "--timeout", type=float, default=600.0, help="seconds --wait waits for scoring (default: 600)"
        )
        parser.add_argument("--no-progress", action="store_true", help="no progress bars")

    def handle(self, *args, **options) -> None:
        root = Path(options["dir"])
        if not root.is_dir():
            raise CommandError(f"{root} is not a folder" if root.exists() else f"{root} does not exist")
        if options["timeout"] < 0:
            raise CommandError("--timeout must be zero or more")
        submitter = self._submitter(options["user"])
        progress = not options["no_progress"] and options["verbosity"] >= 1

        listing = list_files(root, recursive=options["recursive"])
        counts: Counter[str] = Counter()
        rejected: list[tuple[str, str]] = []
        upload_ids = []
        started = time.monotonic()
        with tqdm(
            total=len(listing.files), desc="importing", unit="file", file=sys.stderr, disable=not progress
        ) as bar:
            for path, relative in listing.files:
                shown, outcome, detail = self._import_one(submitter, path, relative)
                counts[outcome] += 1
                if outcome == "rejected":
                    rejected.append((shown, detail))
                else:
                    upload_ids.append(detail)
                bar.update(1)
                bar.set_postfix({key: counts[key] for key in SUMMARY_KEYS}, refresh=False)
        elapsed = time.monotonic() - started

        self._summary(root, submitter, listing, counts, rejected, elapsed)
        timed_out = options["wait"] and not self._wait(upload_ids, timeout=options["timeout"], progress=progress)
        if timed_out:
            raise CommandError("timed out waiting for scoring (is a worker running?)", returncode=2)
        if rejected:
            raise CommandError(f"{_plural(len(rejected), 'file')} rejected (listed above)", returncode=1)

    def _import_one(self, submitter, path: Path, relative: str) -> tuple[str, str, object]:
        """(path shown, one of SUMMARY_KEYS, the upload id or the reason for the rejection)."""
        external_id, shown = import_key(relative)
        try:
            # One byte over the limit is enough for intake to refuse the file as too big. Reading
            # here keeps a storage error inside intake from passing for this file's read error.
            with path.open("rb") as handle:
                data = handle.read(max(settings.VIGIL_MAX_UPLOAD_BYTES, settings.VIGIL_MAX_VIDEO_BYTES) + 1)
        except OSError as exc:
            return shown, "rejected", f"The file cannot be read: {exc.strerror or exc}."
        try:
            upload, created = upload_create(
                submitter=submitter,
                file=io.BytesIO(data),
                filename=path.name,
                external_id=external_id,
                metadata={"import_path": shown},
            )
        except UploadRejected as exc:
            return shown, "rejected", str(exc)
        return shown, "submitted" if created else "already imported", upload.pk

    def _submitter(self, username: str | None):
        User = get_user_model()
        if username:
            user = User.objects.filter(**{User.USERNAME_FIELD: username}).first()
            if user is None:
                raise CommandError(f"no user named {username!r}")
        else:
            clients = list(ApiClient.objects.select_related("user")[:2])
            if len(clients) != 1:
                found = "no API client" if not clients else "more than one API client"
                raise CommandError(f"there is {found}: name the submitter with --user USERNAME")
            user = clients[0].user
        if not user.is_active:
            raise CommandError(f"user {user.get_username()!r} is inactive")
        return user

    def _summary(self, root, submitter, listing: Listing, counts: Counter, rejected, elapsed: float) -> None:
        total = len(listing.files)
        rate = total / elapsed if elapsed > 0 else 0.0
        self.stdout.write(
            f"{root} as {submitter.get_username()}: {counts['submitted']} submitted, "
            f"{counts['already imported']} already imported, {counts['rejected']} rejected; "
            f"{_plural(total, 'file')} in {elapsed:.1f} s ({rate:.1f} files/s)"
        )
        skipped = []
        if listing.hidden:
            skipped.append(f"{listing.hidden} hidden")
        if listing.not_files:
            skipped.append(f"{listing.not_files} not a regular file")
        if listing.folders_not_searched:
            skipped.append(f"{_plural(listing.folders_not_searched, 'subfolder')} (use --recursive)")
        if skipped:
            self.stdout.write(f"skipped: {', '.join(skipped)}")
        if rejected:
            self.stderr.write(f"rejected ({len(rejected)}):")
            for shown, reason in rejected:
                self.stderr.write(f"  {shown}: {reason}")

    def _wait(self, upload_ids: list, *, timeout: float, progress: bool) -> bool:
        """Poll until none of ``upload_ids`` is pending; print the outcome counts. False on timeout.

        Each upload counts with the first status it leaves ``pending`` for; only the ones still
        pending are read again, a batch at a time."""
        deadline = time.monotonic() + timeout
        total = len(upload_ids)
        outcomes: Counter[str] = Counter()
        pending = list(upload_ids)
        with tqdm(total=total, desc="scoring", unit="upload", file=sys.stderr, disable=not progress) as bar:
            while True:
                still = []
                for start in range(0, len(pending), WAIT_BATCH):
                    rows = Upload.objects.filter(pk__in=pending[start : start + WAIT_BATCH]).values_list("pk", "status")
                    for pk, status in rows:
                        if status == Upload.Status.PENDING:
                            still.append(pk)
                        else:
                            outcomes[status] += 1
                bar.update(len(pending) - len(still))
                pending = still
                if not pending or time.monotonic() >= deadline:
                    break
                time.sleep(min(POLL_SECONDS, max(deadline - time.monotonic(), 0)))
        shown = ", ".join(f"{outcomes[status]} {status}" for status in OUTCOMES)
        self.stdout.write(f"scored {total - len(pending)} of {_plural(total, 'upload')}: {shown}")
        if pending:
            self.stderr.write(f"still pending after {timeout:g} s: {len(pending)}")
        return not pending
