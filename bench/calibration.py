"""Calibration and the test-time flip of a trained checkpoint, measured on a labelled split.

    python -m bench.calibration --checkpoint var/bench/calib-lite2/model.pt --data ../shared/datasets/realbench

Serves the checkpoint as workers do (its ONNX export, ONNX Runtime, nudity off), once with the
test-time flip off and once with it on, each with the checkpoint's calibration temperature built in.
Scores the split (default: test) in batches of 32, decode included, and prints for each: accuracy
at 0.5, ROC AUC, harmful recall at precision 0.95, ECE uncalibrated (T = 1) and calibrated, ms per
image in batches, and the median single-image latency (decode included) over ``--latency-images``
images, flip off and on interleaved image by image. Uncalibrated scores are the calibrated ones
with the temperature taken back out (``sigmoid(logit * T)``), exactly what the network gives
without it. Nothing is copied
from the data set; the exports go to ``--out`` (under var/, git-ignored).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from moderation.ml import checkpoints
from moderation.ml.datasets import load_split
from moderation.ml.finetuned import FineTunedClassifier, export_serving
from moderation.ml.inference import classify_each, score_files
from moderation.ml.metrics import binary_metrics, comparison_metrics, expected_calibration_error


def _uncalibrated(scores: np.ndarray, temperature: float) -> np.ndarray:
    p = np.clip(scores, 1e-15, 1 - 1e-15)
    return 1 / (1 + np.exp(-np.log(p / (1 - p)) * temperature))


def _nll(labels: np.ndarray, scores: np.ndarray) -> float:
    p = np.clip(scores, 1e-15, 1 - 1e-15)
    return float(-np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p)))


def measure(classifier, samples) -> dict:
    labels = np.asarray([s.label for s in samples])
    paths = [s.path for s in samples]
    started = time.perf_counter()
    results = score_files(classifier, paths, batch_size=32)
    batch_ms = (time.perf_counter() - started) * 1000 / len(paths)
    scores = np.asarray([r.scores[classifier.category] for r in results], dtype=float)
    raw = _uncalibrated(scores, classifier.temperature)
    return {
        **binary_metrics(labels, scores),
        "recall_at_precision_0.95": comparison_metrics(labels, scores, precision=0.95)["harmful_recall"],
        "ece_uncalibrated": expected_calibration_error(labels, raw),
        "ece_calibrated": expected_calibration_error(labels, scores),
        "nll_uncalibrated": _nll(labels, raw),
        "nll_calibrated": _nll(labels, scores),
        "accuracy_uncalibrated": binary_metrics(labels, raw)["accuracy"],
        "roc_auc_uncalibrated": binary_metrics(labels, raw)["roc_auc"],
        "ms_per_image_batched": batch_ms,
        "images": len(labels),
    }


def single_image_latency(classifiers: dict, paths: list) -> dict[str, float]:
    """Median single-image latency (decode included) of each classifier, interleaved image by
    image so that a change in the machine's load hits all of them alike."""
    times: dict[str, list[float]] = {name: [] for name in classifiers}
    for classifier in classifiers.values():
        list(classify_each(classifier, paths[:1]))  # warm-up
    for path in paths:
        for name, classifier in classifiers.items():
            times[name].append(next(iter(classify_each(classifier, [path]))).latency_ms)
    return {name: statistics.median(values) for name, values in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--split", default="test")
    parser.add_argument("--out", default="var/bench/calibration")
    parser.add_argument("--latency-images", type=int, default=30)
    parser.add_argument("--threads", type=int, default=None, help="ONNX Runtime intra-op threads (default: all)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    samples = load_split(args.data, args.split)
    meta = checkpoints.read(args.checkpoint)
    calibration = (meta.get("metrics") or {}).get("calibration", {})
    print(
        f"{args.checkpoint}: temperature {meta.get('temperature', 1.0)} "
        f"({calibration.get('fitted_on', 'no calibration recorded')}); "
        f"val ECE {calibration.get('val_ece_before', float('nan')):.4f} before, "
        f"{calibration.get('val_ece_after', float('nan')):.4f} after; {len(samples)} {args.split} images"
    )
    import torch

    report = {"checkpoint": args.checkpoint, "temperature": meta.get("temperature", 1.0), "val": calibration}
    classifiers = {}
    for flip in (False, True):
        name = f"flip_{'on' if flip else 'off'}"
        payload = torch.load(args.checkpoint, map_location="cpu", weights_only=True)
        payload["flip"] = flip
        variant = out / f"{name}.pt"
        torch.save(payload, variant)
        served = export_serving(variant, out / f"{name}.onnx")
        classifiers[name] = FineTunedClassifier("unused", nudity=False, serving=served, threads=args.threads)
        report[name] = figures = measure(classifiers[name], samples)
        print(
            f"flip {'on ' if flip else 'off'}: acc {figures['accuracy']:.4f} AUC {figures['roc_auc']:.4f} "
            f"R@P.95 {figures['recall_at_precision_0.95']:.4f} | ECE T=1 {figures['ece_uncalibrated']:.4f}, "
            f"calibrated {figures['ece_calibrated']:.4f} | NLL T=1 {figures['nll_uncalibrated']:.4f}, "
            f"calibrated {figures['nll_calibrated']:.4f} | acc/AUC T=1 {figures['accuracy_uncalibrated']:.4f}/"
            f"{figures['roc_auc_uncalibrated']:.4f} | {figures['ms_per_image_batched']:.1f} ms/image in batches of 32"
        )
    latency = single_image_latency(classifiers, [s.path for s in samples[: args.latency_images]])
    for name, ms in latency.items():
        report[name]["ms_single_image_median"] = ms
    off, on = report["flip_off"], report["flip_on"]
    print(
        f"single image, decode included (median of {args.latency_images}, interleaved): flip off "
        f"{off['ms_single_image_median']:.1f} ms, on {on['ms_single_image_median']:.1f} ms "
        f"({on['ms_single_image_median'] / off['ms_single_image_median']:.2f}x); batched "
        f"{on['ms_per_image_batched'] / off['ms_per_image_batched']:.2f}x"
    )
    (out / "results.json").write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
