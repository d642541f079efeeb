"""Benchmark Vigil's classifiers on a real labelled photo set (realbench), with the paper's table.

    python -m bench.classifier --data ../shared/datasets/realbench [--out bench/results/classifier]

The set's SPLITS.csv gives train/val/test. Every fine-tuned model trains on train (val for early
stopping), is refitted on train+val for the early-stopped epoch count, and is evaluated on test,
next to two baselines measured in the same run: the zero-shot ImageNet prior (Vigil's offline
baseline, no training) and a logistic-regression probe on frozen EfficientNet-Lite0 features.
It also reports every photo category (hard negatives and CCTV frames included), single-image
latency with decoding (12 MP and 1 MP JPEGs made from scikit-image photos), and generalisation:
a model trained without one photo source, tested on that source; and false alarms on other real
photos bundled with installed packages. Images are read in place and never copied; nothing
trained here is shipped. Prints one table and writes ``results.json`` in ``--out``.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from moderation.ml.backbones import BACKBONES, DEFAULT_BACKBONE, WeightsUnavailable, backbone_spec
from moderation.ml.datasets import CLASSES
from moderation.ml.inference import classify_each, score_files
from moderation.ml.metrics import Evaluation
from moderation.ml.train import TrainConfig, train

PAPER = {  # the source paper's MobileNetV2 and ResNet50 on its own balanced Open Images test set
    "paper MobileNetV2 (Open Images)": {"accuracy": 0.835, "precision": 0.87, "recall": 0.79, "roc_auc": 0.92},
    "paper ResNet50 (Open Images)": {"accuracy": 0.822, "precision": 0.96, "recall": 0.68, "roc_auc": 0.93},
}
HELD_OUT_SOURCE = "yatinmanuel/stars-vthacks"  # Open-Images-style gun photos and CCTV frames
PROBE_BACKBONE = "efficientnet_lite0"  # the reference probe: frozen Lite0 features


def read_realbench(root: Path) -> list[dict]:
    splits = {row["file"]: row["split"] for row in csv.DictReader((root / "SPLITS.csv").open())}
    rows = []
    for row in csv.DictReader((root / "MANIFEST.csv").open()):
        rows.append({**row, "path": str(root / row["file"]), "split": splits[row["file"]]})
    return rows


def write_manifest(rows: list[dict], folder: Path, split_of) -> Path:
    """A dataset folder for the trainer: a manifest with absolute paths (the images stay in place)."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "manifest.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "label", "split"])
        for row in rows:
            split = split_of(row)
            if split:
                writer.writerow([row["path"], row["label"], split])
    return folder


def evaluate_rows(classifier, rows: list[dict], category: str) -> tuple[Evaluation, dict]:
    results = score_files(classifier, [Path(r["path"]) for r in rows])
    scores = np.array([r.scores[category] for r in results])
    labels = np.array([CLASSES.index(r["label"]) for r in rows])
    evaluation = Evaluation(labels, scores)
    flagged = {}
    for name in sorted({r["category"] for r in rows}):
        mask = np.array([r["category"] == name for r in rows])
        flagged[name] = {"n": int(mask.sum()), "flagged": float((scores[mask] >= 0.5).mean())}
    return evaluation, flagged


def figures(evaluation: Evaluation) -> dict:
    summary = evaluation.summary()
    labels, scores = evaluation.labels, evaluation.scores
    # harmful recall at the threshold that first reaches harmful precision >= 0.95
    from sklearn.metrics import precision_recall_curve

    precision, recall, _ = precision_recall_curve(labels, scores)
    summary["recall_at_precision_0.95"] = float(recall[precision >= 0.95].max())
    return summary


def zero_shot_prior(rows: list[dict]) -> tuple[Evaluation, dict]:
    from moderation.ml.baseline import BaselineClassifier

    return evaluate_rows(BaselineClassifier(), rows, "weapon")


def frozen_probe(train_rows: list[dict], test_rows: list[dict]) -> Evaluation:
    """Logistic regression on frozen Lite0 features (ImageNet preprocessing: resize, centre crop)."""
    import torch
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from moderation.ml.datasets import Sample
    from moderation.ml.features import compute_frozen_features
    from moderation.ml.network import HarmfulNet
    from moderation.ml.transforms import eval_transform

    pre = backbone_spec(PROBE_BACKBONE).preprocessing
    net = HarmfulNet.build(PROBE_BACKBONE).to(memory_format=torch.channels_last)

    def features(rows):
        samples = [Sample(Path(r["path"]), CLASSES.index(r["label"])) for r in rows]
        kwargs = {"device": torch.device("cpu"), "min_side": pre.resize_to}
        return compute_frozen_features(net, samples, eval_transform(pre), **kwargs).float().numpy()

    probe = make_pipeline(StandardScaler(), LogisticRegression(C=0.01, max_iter=5000, class_weight="balanced"))
    probe.fit(features(train_rows), [CLASSES.index(r["label"]) for r in train_rows])
    scores = probe.predict_proba(features(test_rows))[:, 1]
    return Evaluation(np.array([CLASSES.index(r["label"]) for r in test_rows]), scores)


def fine_tune(dataset: Path, out: Path, backbone: str, args) -> tuple[object, float]:
    config = TrainConfig(
        data=str(dataset),
        out=str(out),
        backbone=backbone,
        unfreeze=args.unfreeze,
        image_size=args.image_size,
        refit=True,
        progress=not args.quiet,
        cache_dir=str(out.parent / "feature-cache"),
    )
    started = time.perf_counter()
    result = train(config)
    return result, time.perf_counter() - started


def latency(classifier, repeats: int) -> dict[str, float]:
    """Median single-image latency, decode included, for a 12 MP and a 1 MP JPEG."""
    import tempfile

    from tests.images import photo

    medians = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, size in (("12MP", (4000, 3000)), ("1MP", (1155, 866))):
            path = Path(tmp) / f"{label}.jpg"
            photo("astronaut").resize(size).save(path, quality=90)
            list(classify_each(classifier, [path]))  # warm-up
            times = [next(iter(classify_each(classifier, [path]))).latency_ms for _ in range(repeats)]
            medians[label] = statistics.median(times)
    return medians


def other_photos() -> list[tuple[str, object]]:
    """Real photos that ship with installed packages (all safe), for false alarms off the benchmark."""
    import skimage.data
    from PIL import Image

    photos = []
    for name in (
        "astronaut",
        "chelsea",
        "coffee",
        "rocket",
        "cat",
        "hubble_deep_field",
        "immunohistochemistry",
        "retina",
        "colorwheel",
    ):
        try:
            photos.append((f"skimage:{name}", Image.fromarray(getattr(skimage.data, name)()).convert("RGB")))
        except Exception:  # a photo missing from this scikit-image version
            continue
    photos.append(("skimage:motorcycle", Image.fromarray(skimage.data.stereo_motorcycle()[0]).convert("RGB")))
    from sklearn.datasets import load_sample_images

    for index, array in enumerate(load_sample_images().images):
        photos.append((f"sklearn:sample{index}", Image.fromarray(array)))
    try:
        import matplotlib.cbook

        for name in ("grace_hopper.jpg",):
            with matplotlib.cbook.get_sample_data(name) as handle:
                photos.append((f"matplotlib:{name}", Image.open(io.BytesIO(handle.read())).convert("RGB")))
    except Exception:
        pass
    return photos


def row_of(name: str, summary: dict, extra: str = "") -> str:
    def cell(key):
        value = summary.get(key)
        return f"{value:.3f}" if isinstance(value, float) else "  -  "

    keys = ("accuracy", "precision", "recall", "f1", "roc_auc", "recall_at_precision_0.95")
    return f"{name:<44}" + "".join(f"{cell(k):>9}" for k in keys) + f"  {extra}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, type=Path, help="realbench folder (MANIFEST.csv, SPLITS.csv)")
    parser.add_argument("--out", type=Path, default=Path("bench/results/classifier"))
    parser.add_argument("--backbones", default=",".join(BACKBONES), help="comma-separated backbones to fine-tune")
    parser.add_argument("--unfreeze", type=int, default=TrainConfig.unfreeze)
    parser.add_argument("--image-size", type=int, default=None)
    parser.add_argument("--latency-repeats", type=int, default=20)
    parser.add_argument("--skip-generalisation", action="store_true")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    args.data = args.data.resolve()  # the manifests written below hold absolute paths
    if not (args.data / "SPLITS.csv").is_file():
        parser.error(f"{args.data} has no SPLITS.csv: give the realbench folder")
    args.out.mkdir(parents=True, exist_ok=True)
    rows = read_realbench(args.data)
    test_rows = [r for r in rows if r["split"] == "test"]
    train_rows = [r for r in rows if r["split"] != "test"]
    results: dict = {"data": str(args.data), "test_images": len(test_rows), "models": {}, "paper": PAPER}

    print("zero-shot ImageNet prior ...", file=sys.stderr)
    prior, prior_flagged = zero_shot_prior(test_rows)
    results["models"]["zero-shot ImageNet prior (baseline)"] = {**figures(prior), "categories": prior_flagged}
    print("frozen-feature probe ...", file=sys.stderr)
    probe = frozen_probe(train_rows, test_rows)
    results["models"]["Lite0 frozen features + logistic regression"] = figures(probe)

    dataset = write_manifest(rows, args.out / "realbench-splits", lambda r: r["split"])
    default_checkpoint = None
    for backbone in [b.strip() for b in args.backbones.split(",") if b.strip()]:
        name = f"Vigil fine-tuned {backbone}"
        try:
            result, seconds = fine_tune(dataset, args.out / f"run-{backbone}", backbone, args)
        except WeightsUnavailable as exc:
            results["models"][name] = {"skipped": str(exc)}
            continue
        from moderation.ml.finetuned import FineTunedClassifier

        classifier = FineTunedClassifier(result.checkpoint, nudity=False)
        evaluation, flagged = evaluate_rows(classifier, test_rows, classifier.category)
        entry = {
            **figures(evaluation),
            "train_seconds": seconds,
            "categories": flagged,
            "best_epoch": result.best_epoch,
        }
        entry["latency_ms"] = latency(classifier, args.latency_repeats)
        entry["latency_ms_with_nudity"] = latency(
            FineTunedClassifier(result.checkpoint, nudity=True), max(5, args.latency_repeats // 2)
        )
        evaluation.write_roc_png(args.out / f"roc-{backbone}.png", title=f"{name} on realbench test")
        results["models"][name] = entry
        save(results, args.out)
        if backbone == DEFAULT_BACKBONE:
            default_checkpoint = result.checkpoint

    if default_checkpoint is not None and not args.skip_generalisation:
        from moderation.ml.finetuned import FineTunedClassifier

        classifier = FineTunedClassifier(default_checkpoint, nudity=False)
        photos = other_photos()
        scores = classifier.harmful_scores([image for _, image in photos])
        names = [name for name, _ in photos]
        results["other_photos"] = {n: float(s) for n, s in zip(names, scores, strict=True)}
        print(f"leave-one-source-out: training without {HELD_OUT_SOURCE} ...", file=sys.stderr)
        held_out = [r for r in rows if r["source_repo"] == HELD_OUT_SOURCE]
        rest = write_manifest(
            rows, args.out / "without-source", lambda r: None if r["source_repo"] == HELD_OUT_SOURCE else r["split"]
        )
        result, _ = fine_tune(rest, args.out / "run-without-source", DEFAULT_BACKBONE, args)
        evaluation, flagged = evaluate_rows(FineTunedClassifier(result.checkpoint, nudity=False), held_out, "weapon")
        results["held_out_source"] = {"source": HELD_OUT_SOURCE, **figures(evaluation), "categories": flagged}

    save(results, args.out)
    print_table(results)
    print("\n".join(target_lines(results)))
    return 0


def target_lines(results: dict) -> list[str]:
    """The issue's targets for the default model, met or not, and where the others are measured."""
    name = f"Vigil fine-tuned {DEFAULT_BACKBONE}"
    entry = results["models"].get(name, {})
    lines = [f"\ntargets ({name}, realbench test):"]
    if "accuracy" not in entry:
        return [*lines, "  not measured: the default backbone was not fine-tuned in this run"]
    cctv = entry.get("categories", {}).get("gun_cctv")
    checks = [("accuracy", entry["accuracy"], 0.97)]
    if cctv:
        checks.append((f"CCTV weapons recall at 0.5 (n={cctv['n']})", cctv["flagged"], 0.9))
    for label, value, target in checks:
        lines.append(f"  {label}: {value:.3f} (target >= {target}) {'met' if value >= target else 'NOT met'}")
    lines.append(
        "  leave-one-source-out and learning from 100 labels: make bench-generalisation; a deployment-only "
        "retraining's policy against the previous model's: make bench-forgetting"
    )
    return lines


def save(results: dict, out: Path) -> None:
    (out / "results.json").write_text(json.dumps(results, indent=2, default=str))


def print_table(results: dict) -> None:
    header = f"{'model':<44}" + "".join(f"{h:>9}" for h in ("acc", "P", "R", "F1", "AUC", "R@P.95"))
    print(f"\nrealbench test split ({results['test_images']} photos); P/R/F1 for 'harmful' at 0.5")
    print(header)
    print("-" * len(header))
    for name, entry in results["models"].items():
        if "skipped" in entry:
            print(f"{name:<44} skipped: {entry['skipped'].split('.')[0]}")
            continue
        extra = f"train {entry['train_seconds']:.0f} s" if "train_seconds" in entry else ""
        print(row_of(name, entry, extra))
    for name, entry in results["paper"].items():
        print(row_of(name, entry, "(its own test set)"))
    for name, entry in results["models"].items():
        if "categories" in entry and "train_seconds" in entry:
            print(f"\n{name}: share flagged harmful (>= 0.5) per category")
            for category, figure in entry["categories"].items():
                print(f"  {category:<22} n={figure['n']:>3}  {figure['flagged']:.3f}")
            hard = [f for c, f in entry["categories"].items() if c.startswith("hardneg")]
            wrong = sum(f["flagged"] * f["n"] for f in hard) / sum(f["n"] for f in hard)
            print(f"  hard negatives wrongly flagged: {wrong:.3f}")
            print(
                f"  latency (median, decode included): {entry['latency_ms']}; with open_nsfw: "
                f"{entry['latency_ms_with_nudity']}"
            )
    if "held_out_source" in results:
        entry = results["held_out_source"]
        print(f"\ntrained without {entry['source']}, tested on its {entry['support']} photos:")
        print(row_of("  held-out source", entry))
        for category, figure in entry["categories"].items():
            print(f"  {category:<22} n={figure['n']:>3}  flagged {figure['flagged']:.3f}")
    if "other_photos" in results:
        flagged = [n for n, s in results["other_photos"].items() if s >= 0.5]
        print(f"\nother real photos (all safe): {len(flagged)} of {len(results['other_photos'])} flagged {flagged}")


if __name__ == "__main__":
    sys.exit(main())
