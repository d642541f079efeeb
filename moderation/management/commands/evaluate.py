"""``manage.py evaluate --data DIR``: the source paper's evaluation of a model on labelled photos."""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from moderation.management.commands._model_choice import (
    add_model_arguments,
    add_serving_overrides,
    load_classifier,
)
from moderation.ml.datasets import DatasetError, load_evaluation_split, load_split
from moderation.ml.inference import harmful_score, score_files
from moderation.ml.metrics import Evaluation


class Command(BaseCommand):
    help = (
        "Evaluate a model on an ImageFolder dataset (safe/ and harmful/; its test/ or val/ split when present): "
        "classification report, confusion matrix, ROC AUC and a ROC curve PNG."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--data", required=True, help="dataset root (safe/, harmful/ or train|val|test/...)")
        parser.add_argument("--split", help="split to evaluate (default: test, else val, else the folder itself)")
        parser.add_argument("--splits", help="CSV with file,split columns (default: DATA/SPLITS.csv when present)")
        add_model_arguments(parser)
        add_serving_overrides(parser)
        parser.add_argument("--category", help="score by this category only (default: the maximum, as routing does)")
        parser.add_argument("--threshold", type=float, default=0.5, help="harmful when score >= threshold")
        parser.add_argument("--roc", help="ROC curve PNG path (default: $VIGIL_VAR_DIR/evaluations/roc-<model>.png)")
        parser.add_argument("--json", dest="json_path", help="also write the figures as JSON")
        parser.add_argument("--batch-size", type=int, default=32)

    def handle(self, *args, **options) -> None:
        try:
            if options["split"]:
                split = options["split"]
                samples = load_split(options["data"], split, splits_file=options["splits"])
            else:
                split, samples = load_evaluation_split(options["data"], splits_file=options["splits"])
        except DatasetError as exc:
            raise CommandError(str(exc)) from None
        name, classifier = load_classifier(
            model=options["model"],
            checkpoint=options["checkpoint"],
            temperature=options["temperature"],
            flip=options["flip"],
        )
        from tqdm import tqdm

        started = time.perf_counter()
        with tqdm(
            total=len(samples), desc="scoring", unit="img", file=sys.stderr, disable=options["verbosity"] < 1
        ) as bar:
            results = score_files(
                classifier,
                [s.path for s in samples],
                batch_size=options["batch_size"],
                progress=bar,
                max_frames=settings.VIGIL_MAX_SCORED_FRAMES,
            )
        ms_per_image = (time.perf_counter() - started) * 1000 / max(len(samples), 1)
        labels, scores = [], []
        for sample, result in zip(samples, results, strict=True):
            if result.scores is None:
                self.stderr.write(f"skipped {result.path}: {result.error}")
                continue
            try:
                scores.append(harmful_score(result.scores, options["category"]))
            except KeyError as exc:
                raise CommandError(str(exc.args[0])) from None
            labels.append(sample.label)
        if len(set(labels)) < 2:
            raise CommandError("evaluation needs decodable images of both classes")
        evaluation = Evaluation(labels=np.array(labels), scores=np.array(scores), threshold=options["threshold"])
        where = f"{options['data']} ({f'the {split} split' if split else 'no split: every image in the folder'})"
        self.stdout.write(f"model {name} on {where}: {len(labels)} images\n")
        serving = _serving_options(classifier)
        if serving:
            self.stdout.write(
                f"served with calibration temperature {serving['temperature']:g}"
                f" ({'uncalibrated' if serving['temperature'] == 1 else 'scores are calibrated probabilities'}), "
                f"test-time flip {'on' if serving['flip'] else 'off'}\n"
            )
        self.stdout.write(
            f"{ms_per_image:.1f} ms per image (decode and every model included, batches of {options['batch_size']})\n"
        )
        self.stdout.write(evaluation.format())
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(name).stem)
        default = Path(settings.VAR_DIR) / "evaluations" / f"roc-{stem}.png"
        roc = Path(options["roc"] or default)
        roc.parent.mkdir(parents=True, exist_ok=True)
        evaluation.write_roc_png(roc, title=f"ROC: {name}")
        self.stdout.write(f"ROC curve written to {roc}")
        if options["json_path"]:
            figures = {
                "model": name,
                "data": str(options["data"]),
                "split": split,
                **evaluation.summary(),
                **({"serving": serving} if serving else {}),
                "ms_per_image": round(ms_per_image, 2),
                "report": evaluation.report(),
            }
            Path(options["json_path"]).write_text(json.dumps(figures, indent=2))


def _serving_options(classifier) -> dict | None:
    """A fine-tuned model's calibration temperature and test-time flip (None for other models)."""
    if not hasattr(classifier, "temperature"):
        return None
    return {"temperature": classifier.temperature, "flip": classifier.flip}
