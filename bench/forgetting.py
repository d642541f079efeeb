"""Does retraining on a deployment's own labels forget what the previous model knew?

    python -m bench.forgetting --data ../shared/datasets/realbench [--source yatinmanuel/stars-vthacks]

The issue's scenario, rebuilt on realbench: the *previous* model was trained on every source but
one (default: the CCTV frames and Open-Images gun photos); a deployment then labels photos of that
source. Three models are trained with the production trainer and judged by the production
promotion rule (feedback/services/promotion.py), on the held-out photos of the new source (the
deployment's own held-out labels) and on the test photos of every other source (the guard set: what
the previous model knew):

- ``deployment only``: the new source's labels alone (what retraining did before rehearsal);
- ``rehearsal``: the new source's labels plus the base dataset (the other sources' train/val),
  as a run does with ``VIGIL_RETRAIN_BASE_DATA`` set.

For each: AUC on both sets, and, routed by the policy in force (the previous model's suggested
thresholds) and by the candidate's own suggested thresholds (its draft), the harmful photos it
auto-approves that the previous model sent to a human or rejected. Images are read in place and
nothing trained here is kept in the project. Prints a table; writes ``results.json`` in ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from bench.classifier import read_realbench, write_manifest
from moderation.ml.datasets import CLASSES
from moderation.ml.train import TrainConfig, train

DEFAULT_SOURCE = "yatinmanuel/stars-vthacks"
RECIPE_PROBE_BELOW = 200  # as VIGIL_RETRAIN_PROBE_BELOW


def _scores(checkpoint: Path, rows: list[dict]) -> np.ndarray:
    from moderation.ml.finetuned import FineTunedClassifier
    from moderation.ml.inference import score_files

    classifier = FineTunedClassifier(checkpoint, nudity=False)
    results = score_files(classifier, [Path(r["path"]) for r in rows])
    return np.array([r.scores["weapon"] for r in results])


def _labels(rows: list[dict]) -> np.ndarray:
    return np.array([CLASSES.index(r["label"]) for r in rows])


def _approved(scores: np.ndarray, thresholds: dict | None) -> np.ndarray:
    if not thresholds:
        return np.zeros(len(scores), dtype=bool)  # no suggestion: nothing is auto-approved by it
    return scores < thresholds["approve_below"]


def _train(name: str, dataset: Path, out: Path, args, train_images: int):
    unfreeze = 0 if train_images < RECIPE_PROBE_BELOW else args.unfreeze
    config = TrainConfig(
        data=str(dataset),
        out=str(out / name),
        backbone=args.backbone,
        image_size=args.image_size,
        unfreeze=unfreeze,
        aug_views=args.aug_views,
        refit=True,
        progress=not args.quiet,
        cache_dir=str(out / "feature-cache"),
    )
    started = time.perf_counter()
    result = train(config)
    print(f"  trained {name}: {train_images} images, unfreeze {unfreeze}, {time.perf_counter() - started:.0f} s")
    return result


def main(argv: list[str] | None = None) -> int:
    from feedback.services.promotion import GuardSet, HeldOut, Rules, promotion_verdict
    from moderation.ml.metrics import comparison_metrics

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="../shared/datasets/realbench")
    parser.add_argument("--source", default=DEFAULT_SOURCE, help="the deployment's new photo source")
    parser.add_argument("--out", default="var/bench/forgetting")
    parser.add_argument("--backbone", default="efficientnet_lite0")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--unfreeze", type=int, default=2)
    parser.add_argument("--aug-views", type=int, default=2)
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    root, out = Path(args.data).resolve(), Path(args.out)
    rows = read_realbench(root)
    home = [r for r in rows if r["source_repo"] == args.source]
    rest = [r for r in rows if r["source_repo"] != args.source]
    if not home:
        print(f"error: no photos from {args.source}", file=sys.stderr)
        return 2
    home_test = [r for r in home if r["split"] == "test"]
    guard = [r for r in rest if r["split"] == "test"]

    def trained_on(row):
        return row["split"] if row["split"] in ("train", "val") else None

    previous_data = write_manifest(rest, out / "data-previous", trained_on)
    deployment_data = write_manifest(home, out / "data-deployment", trained_on)
    both = rest + home
    rehearsal_data = write_manifest(both, out / "data-rehearsal", trained_on)
    count = {
        "previous": sum(r["split"] == "train" for r in rest),
        "deployment only": sum(r["split"] == "train" for r in home),
        "rehearsal": sum(r["split"] == "train" for r in both),
    }
    print(f"new source {args.source}: {len(home)} photos ({len(home_test)} test); guard: {len(guard)} test photos")
    previous = _train("previous", previous_data, out, args, count["previous"])
    policy = previous.metrics["suggested_thresholds"].get("weapon")
    print(f"  policy in force (the previous model's suggestion): {policy}")
    scores = {
        "previous": {"home": _scores(previous.checkpoint, home_test), "guard": _scores(previous.checkpoint, guard)}
    }
    suggestions = {"previous": policy}
    for name, data in (("deployment only", deployment_data), ("rehearsal", rehearsal_data)):
        result = _train(name, data, out, args, count[name])
        scores[name] = {"home": _scores(result.checkpoint, home_test), "guard": _scores(result.checkpoint, guard)}
        suggestions[name] = result.metrics["suggested_thresholds"].get("weapon")
        print(f"  {name}: suggested {suggestions[name]} ({'; '.join(result.metrics.get('threshold_notes', []))})")

    labels = {"home": _labels(home_test), "guard": _labels(guard)}
    rules = Rules(min_harmful=5, min_safe=5, confidence=0.95, auc_margin=0.0, min_recall=0.9, resamples=2000)
    report: dict = {"source": args.source, "backbone": args.backbone, "image_size": args.image_size, "models": {}}
    header = f"{'model':<18}{'AUC new src':>12}{'AUC guard':>10}{'new misses (policy / own draft)':>34}  verdict"
    print(header)
    for name in scores:
        figures = {where: comparison_metrics(labels[where], scores[name][where])["roc_auc"] for where in labels}
        misses, verdict = {}, None
        if name != "previous":

            def held(where: str, thresholds: dict | None, name: str = name) -> HeldOut:
                return HeldOut(
                    labels[where],
                    scores[name][where],
                    scores["previous"][where],
                    _approved(scores[name][where], thresholds),
                    _approved(scores["previous"][where], policy),
                    policy_version=1,
                )

            for policy_name, thresholds in (("in force", policy), ("own draft", suggestions[name])):
                for where in labels:
                    misses[f"{policy_name}/{where}"] = held(where, thresholds).new_misses
            home_held, guard_held = held("home", policy), held("guard", policy)
            verdict = promotion_verdict(
                home_held, forced=False, rules=rules, guards=[GuardSet("realbench test, other sources", guard_held)]
            )
        report["models"][name] = {
            "auc": figures,
            "suggested": suggestions[name],
            "new_misses": misses,
            "verdict": verdict.as_dict() if verdict else None,
        }
        missed = (
            f"{misses['in force/home'] + misses['in force/guard']} / "
            f"{misses['own draft/home'] + misses['own draft/guard']}"
            if misses
            else "–"
        )
        said = f"{'promote' if verdict.promote else 'held'} ({verdict.rule})" if verdict else "(in force)"
        print(f"{name:<18}{figures['home']:>12.3f}{figures['guard']:>10.3f}{missed:>34}  {said}")
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(report, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
