"""``manage.py classify PATH...``: per file, the prediction, latency and scores (folders are walked).

Like the published MobileNetV2 NSFW CLI: prediction, latency in ms (decode, preprocessing and
inference; files are scored in batches of ``--batch-size``, and the latency is the batch's time
per file: ``--batch-size 1`` times each file alone), safe and harmful scores, plus each
category's score and what a threshold policy would do with it: the one in force, ``--policy N``,
or with ``--suggested`` the model's own suggested thresholds (it says which). An animated file is
one row: its scores are the maximum over its scored frames, and ``worst_frame`` says which frame
scored highest; a video likewise, over its sampled frames, with ``worst_time`` in seconds.
"""

from __future__ import annotations

import csv
import time
from dataclasses import replace
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from moderation.management.commands._model_choice import add_model_arguments, load_classifier, suggested_thresholds
from moderation.ml.datasets import image_files
from moderation.ml.inference import harmful_score, score_files
from moderation.models import ThresholdPolicy
from moderation.routing import route_scores
from moderation.services.policies import policy_current, validate_thresholds


class Command(BaseCommand):
    help = "Classify image and video files or folders; print prediction, latency (ms) and scores per file (CSV too)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("paths", nargs="+", help="image files or folders (walked recursively)")
        parser.add_argument("--csv", dest="csv_path", help="also write the rows to this CSV file")
        parser.add_argument("--threshold", type=float, default=0.5, help="predict harmful when score >= threshold")
        add_model_arguments(parser)
        parser.add_argument("--policy", type=int, help="route by this threshold policy version (default: in force)")
        parser.add_argument(
            "--suggested",
            action="store_true",
            help="route by the model's own suggested thresholds (other categories by the policy)",
        )
        parser.add_argument(
            "--batch-size", type=int, default=32, help="files scored together (default 32; 1 times each file alone)"
        )

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
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1")
        name, classifier = load_classifier(model=options["model"], checkpoint=options["checkpoint"])
        thresholds, routed_by = self._thresholds(name, classifier, options)
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
        self.stdout.write(f"model {name}; routes by {routed_by}")
        self.stdout.write("  ".join(header))
        for result in self._scored(classifier, files, options["batch_size"]):
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

    def _scored(self, classifier, files: list[Path], batch_size: int):
        """Each file's result, scored ``batch_size`` files at a time (latency: per file of the batch)."""
        for start in range(0, len(files), batch_size):
            chunk = files[start : start + batch_size]
            began = time.perf_counter()
            results = score_files(classifier, chunk, batch_size=len(chunk), max_frames=settings.VIGIL_MAX_SCORED_FRAMES)
            each = (time.perf_counter() - began) * 1000 / len(chunk)
            yield from (replace(result, latency_ms=each) for result in results)

    def _thresholds(self, name: str, classifier, options) -> tuple[dict, str]:
        """The thresholds to route by, and how to say which they are."""
        if options["policy"] is not None:
            policy = ThresholdPolicy.objects.filter(version=options["policy"]).first()
            if policy is None:
                raise CommandError(f"no threshold policy v{options['policy']}")
            said = f"policy v{policy.version}"
        else:
            policy = policy_current()
            said = f"policy v{policy.version} (in force)"
        if not options["suggested"]:
            return policy.thresholds, said
        suggested = suggested_thresholds(model=options["model"], classifier=classifier)
        if not suggested:
            raise CommandError(f"{name} suggests no thresholds")
        categories = ", ".join(sorted(suggested))
        return (
            validate_thresholds({**policy.thresholds, **suggested}),
            f"{name}'s suggested thresholds for {categories}, the rest by {said}",
        )
