"""A multi-label head (one output per category) against the single harmful output, on realbench.

    python -m bench.categories --data ../shared/datasets/realbench [--out var/bench/categories]

Realbench's harmful photos carry a category (knife, pistol, rifle, gun_photo, gun_cctv): here
``knife`` and ``gun`` (the other four). Both models train on the train split with the same
recipe (frozen EfficientNet-Lite0 at 224 px, head only, so one feature cache serves both) and
are tested on the test split: overall ROC AUC (the multi-label model's harmful score is the
maximum of its outputs, as routing takes it), and per category the AUC on that category's
harmful photos against every safe one (the single model has one score for both). Also the
serving cost of the extra output (torch, one image, median of 50). The images are read in place
through a manifest written under ``--out``; nothing is copied, nothing trained here is shipped.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from media.images import open_rgb
from moderation.ml.datasets import load_split
from moderation.ml.finetuned import FineTunedClassifier
from moderation.ml.train import TrainConfig, train

CATEGORIES = ["knife", "gun"]


def category_of(name: str) -> str:
    return "knife" if name == "knife" else "gun"


def write_manifest(data: Path, out: Path) -> Path:
    """manifest.csv under ``out`` naming realbench's files by absolute path, with its split."""
    splits = {row["file"]: row["split"] for row in csv.DictReader((data / "SPLITS.csv").open())}
    root = out / "data"
    root.mkdir(parents=True, exist_ok=True)
    with (root / "manifest.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["file", "label", "split", "category"])
        writer.writeheader()
        for row in csv.DictReader((data / "MANIFEST.csv").open()):
            category = category_of(row["category"]) if row["label"] == "harmful" else ""
            writer.writerow(
                {
                    "file": str((data / row["file"]).resolve()),
                    "label": row["label"],
                    "split": splits[row["file"]],
                    "category": category,
                }
            )
    return root


def per_category_auc(samples, scores: np.ndarray) -> dict[str, float]:
    labels = np.asarray([s.label for s in samples])
    out = {"overall": float(roc_auc_score(labels, scores.max(axis=1)))}
    for j, name in enumerate(CATEGORIES):
        keep = np.asarray([s.label == 0 or s.category == name for s in samples])
        column = j if scores.shape[1] > 1 else 0
        out[name] = float(roc_auc_score(labels[keep], scores[keep, column]))
    return out


def latency_ms(classifier: FineTunedClassifier, image) -> float:
    classifier.predict([image])
    times = []
    for _ in range(50):
        started = time.perf_counter()
        classifier.predict([image])
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="../shared/datasets/realbench")
    parser.add_argument("--out", default="var/bench/categories")
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args(argv)
    data, out = Path(args.data), Path(args.out)
    root = write_manifest(data, out)
    test = load_split(root, "test")
    common = {
        "data": str(root),
        "backbone": "efficientnet_lite0",
        "unfreeze": 0,
        "image_size": 224,
        "epochs": args.epochs,
        "aug_views": 1,
        "cache_dir": str(out / "cache"),
        "progress": False,
    }
    results, classifiers = {}, {}
    for name, extra in (("single output", {}), ("multi-label head", {"categories": CATEGORIES})):
        started = time.perf_counter()
        result = train(TrainConfig(out=str(out / name.replace(" ", "-")), **common, **extra))
        classifier = FineTunedClassifier(result.checkpoint, nudity=False)
        images = [open_rgb(s.path, min_side=classifier.min_decode_side) for s in test]
        scores = np.concatenate([classifier.output_scores(images[i : i + 64]) for i in range(0, len(images), 64)])
        results[name] = {**per_category_auc(test, scores), "train_s": time.perf_counter() - started}
        classifiers[name] = classifier
    image = open_rgb(test[0].path, min_side=256)
    for name, classifier in classifiers.items():
        results[name]["latency_ms"] = latency_ms(classifier, image)
    base = results["single output"]
    print(f"realbench test: {len(test)} images; categories {', '.join(CATEGORIES)}")
    print(f"{'model':<18}{'overall AUC':>13}{'knife AUC':>11}{'gun AUC':>9}{'ms/image':>10}{'train s':>9}")
    for name, r in results.items():
        print(
            f"{name:<18}{r['overall']:>13.4f}{r['knife']:>11.4f}{r['gun']:>9.4f}{r['latency_ms']:>10.1f}"
            f"{r['train_s']:>9.0f}"
        )
    multi = results["multi-label head"]
    ratios = ", ".join(f"{k} {(1 - multi[k]) / max(1 - base[k], 1e-9):.2f}" for k in ("overall", "knife", "gun"))
    latency = multi["latency_ms"] / base["latency_ms"]
    print(f"multi-label / single, error (1 - AUC) ratios: {ratios}; latency ratio {latency:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
