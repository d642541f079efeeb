"""``manage.py classify PATH...``: per file, the prediction, latency and scores (folders are walked).

Like the published MobileNetV2 NSFW CLI: prediction, latency in ms (decode, preprocessing and
inference of that one file), safe and harmful scores, plus each category's score and what the
current threshold policy would do with it. An animated file is one row: its scores are the maximum
over its scored frames, and ``worst_frame`` says which frame scored highest; a video likewise,
over its sampled frames, with ``worst_time`` in seconds.
"""

from __future__ import annotations

import csv
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from moderation.management.commands._model_choice import add_model_arguments, load_classifier
from moderation.ml.datasets import image_files
from moderation.ml.inference import classify_each, harmful_score
from moderation.routing import route_scores
from moderation.services.policies import policy_current


class Command(BaseCommand):
    help = "Classify image and video files or folders; print prediction, latency (ms) and scores per file (CSV too)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("paths", nargs="+", help="image files or folders (walked recursively)")
        parser.add_argument("--csv", dest="csv_path", help="also write the rows to this CSV file")
        parser.add_argument("--threshold", type=float, default=0.5, help="predict harmful when score >= threshold")
        add_model_arguments(parser)

    def handle(self, *args, paths: list[str], csv_path: str | None, threshold: float, **options) -> None:
        files: list[Path] = []
        for raw in paths:
            path = Path(raw)
            if not path.exists():
                raise CommandError(f"{path} does not exist")
            found = image_files(path, videos=True)
            if path.is_dir() and not found:
                self.stderr.write(f"no images in {path}")
            files.extend(found)
        if not files:
            raise CommandError("no image files to classify")
        name, classifier = load_classifier(model=options["model"], checkpoint=options["checkpoint"])
        thresholds = policy_current().thresholds
        categories = list(classifier.categories)
        header = [
            "file",
            "prediction",
            "latency_ms",
            "safe_score",
            "harmful_score",
            *categories,
            "route",
            "worst_frame",
            "worst_time",
        ]
        rows = []
        self.stdout.write(f"model {name}")
        self.stdout.write("  ".join(header))
        for result in classify_each(classifier, files, max_frames=settings.VIGIL_MAX_SCORED_FRAMES):
            if result.scores is None:
                row = [
                    str(result.path),
                    "error",
                    f"{result.latency_ms:.1f}",
                    "",
                    "",
                    *[""] * len(categories),
                    result.error,
                    "",
                    "",
                ]
            else:
                harmful = harmful_score(result.scores)
                prediction = "harmful" if harmful >= threshold else "safe"
                row = [
                    str(result.path),
                    prediction,
                    f"{result.latency_ms:.1f}",
                    f"{1 - harmful:.4f}",
                    f"{harmful:.4f}",
                    *[f"{result.scores[c]:.4f}" for c in categories],
                    route_scores(result.scores, thresholds).route.value,
                    "" if result.worst_frame is None else str(result.worst_frame),
                    "" if result.worst_time is None else f"{result.worst_time:.3f}",
                ]
            rows.append(row)
            self.stdout.write("  ".join(row))
        if csv_path:
            with open(csv_path, "w", newline="") as handle:
                writer = csv.writer(handle)
                writer.writerow(header)
                writer.writerows(rows)
            self.stdout.write(f"wrote {len(rows)} rows to {csv_path}")
