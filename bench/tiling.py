"""Tiled scoring on realbench's test split: none vs 2x2 vs 3x3 (moderation/ml/tiling.py).

    python -m bench.tiling --data ../shared/datasets/realbench --checkpoint var/bench/tiles-lite2/model.pt

The checkpoint is a model trained on the set's train split (``manage.py train --data
../shared/datasets/realbench --out var/bench/tiles-lite2``: train, val for early stopping, refitted
on both); without ``--checkpoint`` one is trained into ``--out`` first. It is exported to ONNX and
served as workers serve it (ONNX Runtime, weapon network only: open_nsfw never sees tiles), once
per tiling, over every test photo one at a time (decode, tiles and inference timed together, as
``manage.py classify`` does). Reports ROC AUC, accuracy at 0.5, weapon recall on the CCTV frames,
false alarms on CCTV frames without a weapon and on hard negatives, how many photos were tiled,
and the median and 90th-percentile milliseconds per photo, each against ``none`` measured in the
same run, and the median for a 1 MP and a 12 MP JPEG (bench/classifier.py's, made from
scikit-image's astronaut: a large frame is decoded larger for its tiles). Images are read in
place and never copied; nothing trained here is shipped.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

from bench.classifier import figures, latency, read_realbench
from moderation.ml.datasets import CLASSES
from moderation.ml.inference import classify_each
from moderation.ml.metrics import Evaluation
from moderation.ml.tiling import CHOICES, Tiling

CCTV = ("gun_cctv", "cctv_no_weapon")


def train_checkpoint(data: Path, out: Path) -> Path:
    from moderation.ml.train import TrainConfig, train

    return train(TrainConfig(data=str(data), out=str(out), refit=True)).checkpoint


def measure(classifier, rows: list[dict], threshold: float = 0.5) -> dict:
    results = list(classify_each(classifier, [Path(r["path"]) for r in rows]))
    bad = [r.path for r in results if r.scores is None]
    if bad:
        raise SystemExit(f"undecodable: {bad[:3]}")
    scores = np.array([r.scores[classifier.category] for r in results])
    labels = np.array([CLASSES.index(r["label"]) for r in rows])
    latencies = [r.latency_ms for r in results]
    evaluation = Evaluation(labels, scores, threshold=threshold)
    summary = figures(evaluation)
    flagged = scores >= threshold

    def share(mask) -> dict:
        return {"n": int(mask.sum()), "flagged": int(flagged[mask].sum())}

    category = np.array([r["category"] for r in rows])
    cctv = np.isin(category, list(CCTV))
    size = classifier.preprocessing.size
    tiled = sum(classifier.tiling.applies(int(r["width"]), int(r["height"]), size) for r in rows)
    return {
        "roc_auc": summary["roc_auc"],
        "accuracy": summary["accuracy"],
        "precision": summary["precision"],
        "recall": summary["recall"],
        "cctv_weapon": share(category == "gun_cctv"),
        "cctv_no_weapon": share(category == "cctv_no_weapon"),
        "hard_negatives": share(np.char.startswith(category.astype(str), "hardneg")),
        "recall_at_precision_0.95": summary["recall_at_precision_0.95"],
        # ranking within the CCTV frames only: weapon frames above frames without one
        "cctv_roc_auc": Evaluation(labels[cctv], scores[cctv]).roc_auc(),
        "non_cctv_errors": int(((flagged != labels.astype(bool)) & ~cctv).sum()),
        "tiled": int(tiled),
        "images": len(rows),
        "ms_median": statistics.median(latencies),
        "ms_p90": float(np.percentile(latencies, 90)),
        "scores": {r["file"]: round(float(v), 6) for r, v in zip(rows, scores, strict=True)},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.tiling", description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="../shared/datasets/realbench")
    parser.add_argument("--checkpoint", help="model.pt trained on the set's train split (default: train one)")
    parser.add_argument("--out", default="var/bench/tiling", help="results.json (and a trained model) go here")
    parser.add_argument("--tilings", nargs="+", default=list(CHOICES), choices=CHOICES)
    parser.add_argument("--threads", type=int, default=None, help="ONNX Runtime threads (default: all cores)")
    parser.add_argument("--repeats", type=int, default=15, help="timed runs of each large JPEG (median reported)")
    args = parser.parse_args(argv)

    from moderation.ml.finetuned import FineTunedClassifier, export_serving

    data, out = Path(args.data), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    checkpoint = Path(args.checkpoint) if args.checkpoint else train_checkpoint(data, out / "model")
    rows = [r for r in read_realbench(data) if r["split"] == "test"]
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        onnx = export_serving(checkpoint, Path(tmp) / "model.onnx")
        for name in args.tilings:
            classifier = FineTunedClassifier(
                "unused", nudity=False, serving=onnx, threads=args.threads, tiling=Tiling.parse(name)
            )
            list(classify_each(classifier, [Path(rows[0]["path"])]))  # warm-up
            results[name] = measure(classifier, rows)
            results[name]["large_jpeg_ms"] = latency(classifier, args.repeats)
            shown = {k: v for k, v in results[name].items() if k != "scores"}
            print(f"{name}: {json.dumps(shown)}", file=sys.stderr, flush=True)
    (out / "results.json").write_text(json.dumps({"checkpoint": str(checkpoint), "results": results}, indent=2))
    print_table(results)
    return 0


def print_table(results: dict[str, dict]) -> None:
    base = results.get("none")
    print(
        "| tiling | tiled photos | AUC | acc | P | R | R@P.95 | CCTV weapons flagged | CCTV no weapon flagged"
        " | CCTV AUC | hard negatives flagged | errors outside CCTV | ms/photo median (×none) | p90"
        " | 1 MP JPEG | 12 MP JPEG |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, r in results.items():
        ratio = f" ({r['ms_median'] / base['ms_median']:.2f}×)" if base else ""
        print(
            f"| {name} | {r['tiled']}/{r['images']} | {r['roc_auc']:.3f} | {r['accuracy']:.3f} "
            f"| {r['precision']:.3f} | {r['recall']:.3f} | {r['recall_at_precision_0.95']:.3f} "
            f"| {r['cctv_weapon']['flagged']}/{r['cctv_weapon']['n']} "
            f"| {r['cctv_no_weapon']['flagged']}/{r['cctv_no_weapon']['n']} | {r['cctv_roc_auc']:.3f} "
            f"| {r['hard_negatives']['flagged']}/{r['hard_negatives']['n']} | {r['non_cctv_errors']} "
            f"| {r['ms_median']:.1f}{ratio} | {r['ms_p90']:.1f} "
            f"| {r['large_jpeg_ms']['1MP']:.0f} | {r['large_jpeg_ms']['12MP']:.0f} |"
        )


if __name__ == "__main__":
    sys.exit(main())
