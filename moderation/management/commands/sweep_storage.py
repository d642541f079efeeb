from __future__ import annotations

from django.core.management.base import BaseCommand

from moderation.services.storage_sweep import storage_sweep


class Command(BaseCommand):
    help = (
        "Delete stored files (originals/, display/) that no upload references and that are older than "
        "VIGIL_STORAGE_SWEEP_GRACE_SECONDS. Beat runs it every VIGIL_STORAGE_SWEEP_INTERVAL_SECONDS."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="list what would be deleted, delete nothing")
        parser.add_argument(
            "--grace", type=int, default=None, help="seconds (default VIGIL_STORAGE_SWEEP_GRACE_SECONDS)"
        )

    def handle(self, *args, dry_run: bool, grace: int | None, **options) -> None:
        if grace is not None and grace < 60:
            self.stderr.write("--grace below 60 s could remove a file whose upload is still being written.")
            raise SystemExit(2)
        result = storage_sweep(dry_run=dry_run, grace_seconds=grace)
        for orphan in result.orphans:
            self.stdout.write(f"{orphan.name}\t{orphan.size}\t{orphan.modified:%Y-%m-%d %H:%M:%S}")
        record = result.record
        verb = "would delete" if dry_run else "deleted"
        done = record.orphans if dry_run else record.deleted
        self.stdout.write(
            f"{record.scanned} files scanned, {record.orphans} orphans, {verb} {done}"
            f" ({record.errors} errors){f'; {record.note}' if record.note else ''}"
        )
        if record.note or record.errors:
            raise SystemExit(1)
