"""python manage.py export_feedback OUT [--format imagefolder|csv|jsonl|zip] [filters]"""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.timezone import make_aware
from tqdm import tqdm

from feedback.services.export import ExportFilters, export_imagefolder, export_manifest, export_zip_stream


def _when(value: str | None):
    if not value:
        return None
    parsed = parse_datetime(value) or (parse_date(value) and parse_datetime(f"{value}T00:00:00"))
    if parsed is None:
        raise CommandError(f"not a date or date-time: {value!r} (use YYYY-MM-DD or an ISO date-time)")
    return parsed if parsed.tzinfo else make_aware(parsed)


class Command(BaseCommand):
    help = (
        "Export human decisions as training data: an ImageFolder (train/ and val/ with safe/ and harmful/, "
        "plus manifest.csv and manifest.jsonl), only a manifest (csv, jsonl), or a zip of the ImageFolder."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("out", help="folder (imagefolder) or file (csv, jsonl, zip) to write")
        parser.add_argument("--format", choices=["imagefolder", "csv", "jsonl", "zip"], default="imagefolder")
        parser.add_argument("--since", help="decided at or after (YYYY-MM-DD or ISO date-time)")
        parser.add_argument("--until", help="decided before")
        parser.add_argument("--model", default="", help="model version name at decision time")
        parser.add_argument("--label", choices=["harmful", "safe"], default="")
        parser.add_argument("--category", default="")
        parser.add_argument("--moderator", default="", help="username")
        parser.add_argument("--overturned", action="store_true", help="only where humans disagreed with the model")
        parser.add_argument("--val-fraction", type=float, default=0.2)
        parser.add_argument("--seed", type=int, default=13)

    def handle(self, *args, **options) -> None:
        if not 0 <= options["val_fraction"] < 1:
            raise CommandError("--val-fraction must be in [0, 1)")
        filters = ExportFilters(
            since=_when(options["since"]),
            until=_when(options["until"]),
            model_version=options["model"],
            label=options["label"],
            category=options["category"],
            moderator=options["moderator"],
            overturned_only=options["overturned"],
        )
        split = {"val_fraction": options["val_fraction"], "seed": options["seed"]}
        out = Path(options["out"])
        fmt = options["format"]
        if fmt == "imagefolder":
            try:
                summary = export_imagefolder(out, filters, **split)
            except FileExistsError as exc:
                raise CommandError(str(exc)) from None
            self.stdout.write(f"exported {summary.images} images to {out}: {summary.by_split_label}")
            return
        if out.exists():
            raise CommandError(f"{out} exists; choose a new file name")
        if fmt == "zip":
            with out.open("wb") as handle, tqdm(unit="B", unit_scale=True, desc="zip") as bar:
                for chunk in export_zip_stream(filters, **split):
                    handle.write(chunk)
                    bar.update(len(chunk))
            self.stdout.write(f"wrote {out} ({out.stat().st_size} bytes)")
            return
        with out.open("w", newline="") as handle:
            count = export_manifest(handle, filters, fmt=fmt, **split)
        self.stdout.write(f"wrote {count} rows to {out}")
