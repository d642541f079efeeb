from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from hashes.formats import FORMATS
from hashes.models import HashList
from hashes.services.lists import hash_list_export, own_rejections_export
from moderation.ml.files import atomic_write


class Command(BaseCommand):
    help = (
        "Write a hash list, or (--own) the PDQ hashes of pictures Vigil's moderators rejected, as a pdq or "
        "HMA file (docs/hash-lists.md)."
    )

    def add_arguments(self, parser) -> None:
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--list", dest="list_name", help="the hash list's name")
        which.add_argument("--own", action="store_true", help="the hashes of uploads moderators rejected")
        parser.add_argument("--format", dest="fmt", choices=FORMATS, default="pdq")
        parser.add_argument("--output", help="a file to write (default: standard output)")

    def handle(self, *args, list_name: str | None, own: bool, fmt: str, output: str | None, **options) -> None:
        if own:
            lines = own_rejections_export(fmt=fmt)
        else:
            hash_list = HashList.objects.filter(name=list_name).first()
            if hash_list is None:
                raise CommandError(f"No hash list named {list_name!r}.")
            lines = hash_list_export(hash_list=hash_list, fmt=fmt)
        if not output:
            count = self._write(lines, lambda line: self.stdout.write(line, ending=""))
        else:
            target = Path(output)
            if not target.parent.is_dir():
                raise CommandError(f"{output}: cannot be written (no such folder).")
            try:
                with atomic_write(target) as handle:  # a reader never sees half a file
                    count = self._write(lines, lambda line: handle.write(line.encode("utf-8")))
            except OSError as exc:
                raise CommandError(f"{output}: cannot be written ({exc.strerror or exc}).") from None
            self.stderr.write(f"{count} hashes written to {output}")

    @staticmethod
    def _write(lines, write) -> int:
        count = 0
        for line in lines:
            write(line)
            count += 1
        return count
