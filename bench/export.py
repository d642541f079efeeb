"""Feedback export at scale: bounded memory while exporting 100,000 labelled images.

    python -m bench.export [--images 100000] [--database-url postgres://…/vigil_bench_export]

Creates (and drops) its own PostgreSQL database with ``--images`` uploads, each with a human
decision (rows generated in SQL by ``bench.metrics.generate``; every upload points at the same
small JPEG on disk, so the run needs no gigabytes of images). Then, each in a fresh process,
exports 1/10 of them and all of them as a streamed zip, as an ImageFolder, and as a CSV manifest,
and reports rows per second and the peak resident memory above the process's own baseline
(Django set up, before exporting). Memory that does not grow with ten times the images is the
point; the zip's central directory is the one part that must (a few hundred bytes per file).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.scratch import scratch_database, seed_traffic

ROOT = Path(__file__).resolve().parents[1]


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(fmt: str, limit: int, out: str) -> None:
    """One export in this process; prints a JSON line."""
    import django

    django.setup()
    from feedback.services.export import ExportFilters, export_imagefolder, export_manifest, export_zip_stream
    from reviews.models import Decision

    baseline = rss_mb()
    until = None
    if limit:
        until = Decision.objects.order_by("created_at").values_list("created_at", flat=True)[limit - 1]
    filters = ExportFilters(until=until) if until else ExportFilters()
    started = time.perf_counter()
    if fmt == "zip":
        size = 0
        for chunk in export_zip_stream(filters):
            size += len(chunk)
        rows = None
    elif fmt == "imagefolder":
        rows = export_imagefolder(out, filters).images
        size = None
    else:
        with open(out, "w", newline="") as handle:
            rows = export_manifest(handle, filters, fmt="csv")
        size = os.path.getsize(out)
    seconds = time.perf_counter() - started
    print(
        json.dumps(
            {
                "format": fmt,
                "limit": limit,
                "seconds": seconds,
                "rows": rows,
                "bytes": size,
                "baseline_mb": baseline,
                "peak_mb": rss_mb(),
            }
        )
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/vigil_bench_export")
    parser.add_argument("--out", default=str(ROOT / "var" / "bench" / "export.json"))
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ["DATABASE_URL"] = args.database_url
    os.environ.setdefault("DJANGO_DEBUG", "1")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    media = Path(tempfile.mkdtemp(prefix="vigil-bench-export-"))
    os.environ.setdefault("VIGIL_MEDIA_ROOT", str(media / "media"))
    if args.child:
        child(args.child[0], int(args.child[1]), args.child[2])
        return 0

    results = []
    try:
        with scratch_database(args.database_url):
            from django.db import connection

            from tests.images import photo_jpeg

            seeded = seed_traffic(uploads=args.images, moderators=5)
            print(f"generated {args.images:,} uploads with decisions in {seeded['seconds']:.0f} s")
            from django.core.files.base import ContentFile
            from django.core.files.storage import default_storage

            # Through the storage API, like intake: the bench runs on whichever storage is configured.
            name = default_storage.save("originals/bench.jpg", ContentFile(photo_jpeg("coffee", quality=40)))
            with connection.cursor() as cursor:
                cursor.execute("UPDATE moderation_upload SET original = %s", [name])
            connection.close()
            for fmt in ("zip", "imagefolder", "csv"):
                for limit in (args.images // 10, 0):
                    out = media / f"out-{fmt}-{limit}"
                    line = (
                        subprocess.run(
                            [
                                sys.executable,
                                "-m",
                                "bench.export",
                                "--database-url",
                                args.database_url,
                                "--child",
                                fmt,
                                str(limit),
                                str(out),
                            ],
                            cwd=ROOT,
                            capture_output=True,
                            text=True,
                            check=True,
                            env=os.environ,
                        )
                        .stdout.strip()
                        .splitlines()[-1]
                    )
                    results.append(json.loads(line))
                    shutil.rmtree(out, ignore_errors=True) if out.is_dir() else out.unlink(missing_ok=True)
            default_storage.delete(name)
    finally:
        shutil.rmtree(media, ignore_errors=True)

    header = ("format", "images", "seconds", "images/s", "baseline MB", "peak MB", "growth MB")
    print("{:12} {:>8} {:>8} {:>9} {:>12} {:>8} {:>10}".format(*header))
    for r in results:
        images = r["rows"] or (r["limit"] or args.images)
        growth = r["peak_mb"] - r["baseline_mb"]
        print(
            f"{r['format']:12} {images:8} {r['seconds']:8.1f} {images / r['seconds']:9.0f} "
            f"{r['baseline_mb']:12.0f} {r['peak_mb']:8.0f} {growth:10.1f}"
        )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
