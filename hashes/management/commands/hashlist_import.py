from __future__ import annotations

import sys
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from hashes.formats import FORMATS
from hashes.models import HashList
from hashes.services.lists import HashFileRefused, hash_list_create, hash_list_import


class Command(BaseCommand):
    help = (
        "Import a file of PDQ hashes into a hash list (docs/hash-lists.md). All or nothing: a file with a bad "
        "line is refused whole, its bad lines listed."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("path", help="the file; - reads standard input")
        parser.add_argument("--list", required=True, dest="list_name", help="the hash list's name")
        parser.add_argument("--create", action="store_true", help="create the list (it must not exist yet)")
        parser.add_argument(
            "--action", choices=HashList.Action.values, help="with --create: what a match does (default: queue)"
        )
        parser.add_argument("--category", default="", help="a harmful category key (with --create)")
        parser.add_argument("--description", default="", help="with --create")
        parser.add_argument("--format", dest="fmt", choices=["auto", *FORMATS], default="auto")

    def handle(self, *args, path: str, list_name: str, create: bool, fmt: str, **options) -> None:
        try:
            with transaction.atomic():  # a refused file does not leave a new, empty list behind either
                hash_list = self._list(list_name, create=create, **options)
                counts = self._import(path, hash_list, fmt)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        except HashFileRefused as exc:
            lines = "\n".join(f"  {error}" for error in exc.errors)
            more = f"\n  … and {exc.error_count - len(exc.errors)} more" if exc.error_count > len(exc.errors) else ""
            raise CommandError(
                f"{path}: nothing imported, {exc.error_count} bad line(s); fix them and run it again:\n{lines}{more}"
            ) from None
        self.stdout.write(
            f"{hash_list.name}: {counts.added} added, {counts.already_present} already in the list, "
            f"{counts.repeated} repeated in the file"
        )

    def _list(
        self, name: str, *, create: bool, action: str | None, category: str, description: str, **options
    ) -> HashList:
        if create:
            action = action or HashList.Action.QUEUE
            return hash_list_create(name=name, action=action, category=category, description=description)
        if action or category or description:
            raise CommandError("--action, --category and --description describe a new list: use them with --create.")
        hash_list = HashList.objects.filter(name=name).first()
        if hash_list is None:
            raise CommandError(f"No hash list named {name!r}; add --create to make it.")
        return hash_list

    def _import(self, path: str, hash_list: HashList, fmt: str):
        if path == "-":
            return hash_list_import(hash_list=hash_list, data=sys.stdin.buffer, fmt=fmt)
        file = Path(path)
        if not file.is_file():
            raise CommandError(f"{path}: no such file.")
        try:
            with file.open("rb") as handle:
                return hash_list_import(hash_list=hash_list, data=handle, fmt=fmt)
        except OSError as exc:
            raise CommandError(f"{path}: cannot be read ({exc.strerror or exc}).") from None
