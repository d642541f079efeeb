"""INT8 against fp32: per-network latency, score agreement, AUC and recall on realbench.

    python -m bench.quantization [--model NAME] [--data ../shared/datasets/realbench] [--json OUT]
    (make bench-quantization)

Compares a model version with its int8 sibling (``--model``: either of them; default the active
version; a version without an int8 sibling is quantized first, as ``manage.py quantize_model``
would), on the configured database and ``VIGIL_MODEL_DIR``:

1. **latency**: each network alone (its ONNX Runtime session on prepared input) and the whole
   classifier (preparation included), fp32 and int8 interleaved in one run, batch 1 and batch 8,
   ``--threads`` intra-op threads (2), median ms per image;
2. **agreement**: the largest and mean absolute score difference per category, and uploads routed
   differently under the cold-start policy, on all of scikit-image's photos and on every image of
   realbench (read in place, never copied; nothing is calibrated or trained on it);
3. **quality** on realbench's test split: ROC AUC of each category's score and of the harmful score
   (their maximum, as routing sees it), and harmful recall at the cold-start thresholds (harmful
   photos kept out of auto-approve; auto-rejected), fp32 and int8;

and prints the verdict "within 0.005 AUC and recall: met" (or NOT met).

For another benchmark (bench/pipeline.py): :func:`quantization_report` takes two loaded model
versions and returns the figures as a dict; :func:`print_table` prints them.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
REALBENCH = ROOT.parent / "shared" / "datasets" / "realbench"
TOLERANCE = 0.005  # the issue's bar: int8 within 0.005 of fp32 in AUC and recall
BATCH = 8


def versions_to_compare(name: str | None = None, *, quantize: bool = True):
    """(fp32 reference, int8 version) for ``name`` (either of the two; default the active
    version). Without an int8 sibling, ``quantize`` makes one (a candidate), else it is an error."""
    from moderation.services.model_versions import (
        RegistryError,
        model_version_ensure_active,
        model_version_get,
        model_version_quantized_sibling,
        model_version_reference,
    )

    version = model_version_get(name=name) if name else model_version_ensure_active()
    reference = model_version_reference(version)
    int8 = version if version.pk != reference.pk else model_version_quantized_sibling(reference)
    if int8 is None:
        if not quantize:
            raise RegistryError(f"{reference.name} has no int8 version (manage.py quantize_model {reference.name})")
        from moderation.services.quantization import model_version_quantize

        print(f"{reference.name} has no int8 version: quantizing it…", file=sys.stderr, flush=True)
        int8 = model_version_quantize(model_version=reference).model_version
    return reference, int8


def quantization_report(
    *, reference, quantized, data: Path | None = REALBENCH, threads: int = 2, repeats: int = 20, split: str = ""
) -> dict:
    """Every figure of the module docstring for two model versions (ModelVersion rows): the fp32
    ``reference`` and its ``quantized`` sibling. ``data``: a realbench-style folder (MANIFEST.csv,
    SPLITS.csv), or None to skip the realbench figures; ``split``: only that split's images for the
    agreement (AUC and recall always use the test split)."""
    from moderation.classifiers import load_classifier

    fp32 = load_classifier(reference, threads=threads)
    int8 = load_classifier(quantized, threads=threads)
    report = {
        "reference": reference.name,
        "quantized": quantized.name,
        "threads": threads,
        "cpu": _cpu(),
        "quantization": quantized.config.get("quantized", {}),
        "latency": latency(fp32, int8, repeats=repeats),
        "agreement": {"scikit-image photos": agreement(fp32, int8, _skimage_photos())},
    }
    if data is not None and Path(data).is_dir():
        rows = _realbench_rows(Path(data))
        side = max(fp32.min_decode_side, int8.min_decode_side)
        scored = [r for r in rows if not split or r["split"] == split]
        scores = _score_files(fp32, int8, [r["path"] for r in scored], side)
        report["agreement"][f"realbench ({split or 'all'})"] = _agreement_of(*scores, names=[r["file"] for r in scored])
        test = [i for i, r in enumerate(scored) if r["split"] == "test"]
        if not test:
            test_rows = [r for r in rows if r["split"] == "test"]
            scores = _score_files(fp32, int8, [r["path"] for r in test_rows], side)
            test, scored = list(range(len(test_rows))), test_rows
        labels = np.array([scored[i]["label"] == "harmful" for i in test])
        report["quality"] = quality([scores[0][i] for i in test], [scores[1][i] for i in test], labels)
    report["verdict"] = verdict(report)
    return report


# --- latency ------------------------------------------------------------------------------------


def latency(fp32, int8, *, repeats: int = 20, batches: tuple[int, ...] = (1, BATCH)) -> dict:
    """Median ms per image of each network (its session alone, on prepared input) and of the whole
    classifier (``predict``: preparation, every network, tiling), fp32 and int8 interleaved so both
    see the same machine; batches of real photos."""
    photos = [image for _, image in _skimage_photos()]
    sessions = {"fp32": fp32.sessions(), "int8": int8.sessions()}
    results: dict[str, dict] = {}
    for size in batches:
        images = (photos * (size // len(photos) + 1))[:size]
        runs = {}
        for name in sessions["fp32"]:
            if name not in sessions["int8"]:
                continue
            for kind in ("fp32", "int8"):
                session, prepare = sessions[kind][name]
                feed = {session.get_inputs()[0].name: prepare(images)}
                runs[(name, kind)] = lambda s=session, f=feed: s.run(None, f)
        for kind, classifier in (("fp32", fp32), ("int8", int8)):
            runs[("classifier (preparation included)", kind)] = lambda c=classifier, i=images: c.predict(i)
        times = {key: [] for key in runs}
        for run in runs.values():
            run()  # warm
        for _ in range(repeats):
            for key, run in runs.items():  # interleaved: fp32, int8, fp32, … on the same machine state
                started = time.perf_counter()
                run()
                times[key].append((time.perf_counter() - started) * 1000 / size)
        for (name, kind), values in times.items():
            results.setdefault(name, {}).setdefault(f"batch {size}", {})[kind] = statistics.median(values)
    for figures in results.values():
        for cell in figures.values():
            cell["speedup"] = cell["fp32"] / cell["int8"]
    return results


# --- agreement and quality ----------------------------------------------------------------------


def agreement(fp32, int8, named_images: list[tuple[str, object]]) -> dict:
    images = [image for _, image in named_images]
    reference, candidate = [], []
    for start in range(0, len(images), BATCH):
        reference += fp32.predict(images[start : start + BATCH])
        candidate += int8.predict(images[start : start + BATCH])
    return _agreement_of(reference, candidate, names=[name for name, _ in named_images])


def _agreement_of(reference: list[dict], candidate: list[dict], *, names: list[str]) -> dict:
    from moderation.routing import route_scores
    from moderation.services.policies import DEFAULT_THRESHOLDS

    out = {"images": len(reference), "categories": {}}
    for category in reference[0]:
        diff = np.abs(np.array([r[category] for r in reference]) - np.array([c[category] for c in candidate]))
        out["categories"][category] = {
            "max_abs_diff": float(diff.max()),
            "mean_abs_diff": float(diff.mean()),
            "p99_abs_diff": float(np.quantile(diff, 0.99)),
            "worst": names[int(diff.argmax())],
        }
    routes = [
        (route_scores(r, DEFAULT_THRESHOLDS).route, route_scores(c, DEFAULT_THRESHOLDS).route)
        for r, c in zip(reference, candidate, strict=True)
    ]
    out["routed_differently"] = sum(a != b for a, b in routes)
    out["max_abs_diff"] = max(c["max_abs_diff"] for c in out["categories"].values())
    return out


def quality(reference: list[dict], candidate: list[dict], harmful: np.ndarray) -> dict:
    """ROC AUC per category and of the harmful score (the maximum), and harmful recall at the
    cold-start thresholds, for the fp32 and the int8 scores of the same labelled images."""
    from sklearn.metrics import roc_auc_score

    from moderation.routing import Route, route_scores
    from moderation.services.policies import DEFAULT_THRESHOLDS

    out = {"images": len(harmful), "harmful": int(harmful.sum())}
    for kind, rows in (("fp32", reference), ("int8", candidate)):
        figures = {}
        for category in rows[0]:
            figures[f"auc {category}"] = float(roc_auc_score(harmful, [r[category] for r in rows]))
        figures["auc harmful"] = float(roc_auc_score(harmful, [max(r.values()) for r in rows]))
        routes = np.array([route_scores(r, DEFAULT_THRESHOLDS).route for r in rows])
        figures["recall (kept out of auto-approve)"] = float((routes[harmful] != Route.APPROVE).mean())
        figures["recall (auto-rejected)"] = float((routes[harmful] == Route.REJECT).mean())
        figures["safe auto-approved"] = float((routes[~harmful] == Route.APPROVE).mean())
        out[kind] = figures
    out["routed_differently"] = int(
        sum(
            route_scores(r, DEFAULT_THRESHOLDS).route != route_scores(c, DEFAULT_THRESHOLDS).route
            for r, c in zip(reference, candidate, strict=True)
        )
    )
    return out


def verdict(report: dict) -> dict:
    """Met when every AUC and the harmful recall (kept out of auto-approve) of int8 are within
    TOLERANCE of fp32 on realbench's test split."""
    quality = report.get("quality")
    if not quality:
        return {"met": None, "why": ["no labelled set (--data): AUC and recall not measured"]}
    checked = [k for k in quality["fp32"] if k.startswith("auc") or k == "recall (kept out of auto-approve)"]
    misses = [
        f"{k} {quality['fp32'][k]:.4f} → {quality['int8'][k]:.4f}"
        for k in checked
        if abs(quality["int8"][k] - quality["fp32"][k]) > TOLERANCE
    ]
    return {"met": not misses, "why": misses, "checked": checked}


# --- data ---------------------------------------------------------------------------------------


def _skimage_photos() -> list[tuple[str, object]]:
    """Every scikit-image photo quantization knows (those it calibrates on and those it checks on),
    whole."""
    from moderation.ml.quantize import CALIBRATION_PHOTOS, CHECK_PHOTOS, photo

    return [(f"skimage:{name}", photo(name)) for name in (*CALIBRATION_PHOTOS, *CHECK_PHOTOS)]


def _realbench_rows(root: Path) -> list[dict]:
    splits = {row["file"]: row["split"] for row in csv.DictReader((root / "SPLITS.csv").open())}
    return [
        {**row, "path": root / row["file"], "split": splits.get(row["file"], "")}
        for row in csv.DictReader((root / "MANIFEST.csv").open())
    ]


def _score_files(fp32, int8, paths: list[Path], side: int) -> tuple[list[dict], list[dict]]:
    """Both classifiers' scores of each file, decoded once as the worker decodes it."""
    from media.images import open_rgb

    reference, candidate = [], []
    for start in range(0, len(paths), BATCH):
        images = [open_rgb(p, min_side=side) for p in paths[start : start + BATCH]]
        reference += fp32.predict(images)
        candidate += int8.predict(images)
        print(f"\r  scored {start + len(images)}/{len(paths)} images", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return reference, candidate


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                flags = Path("/proc/cpuinfo").read_text()
                vnni = " (avx512_vnni)" if "avx512_vnni" in flags else ""
                return line.split(":", 1)[1].strip() + vnni
    except OSError:
        pass
    return "unknown"


# --- output -------------------------------------------------------------------------------------


def print_table(report: dict) -> None:
    print(f"\nQuantization: {report['reference']} (fp32) vs {report['quantized']} (int8)")
    print(f"{report['cpu']}, {report['threads']} threads; ms per image, median, fp32 and int8 interleaved\n")
    print(f"{'network':<36} {'batch':>5} {'fp32 ms':>9} {'int8 ms':>9} {'fp32/int8':>10}")
    for name, batches in report["latency"].items():
        for batch, cell in batches.items():
            print(
                f"{name:<36} {batch.split()[-1]:>5} {cell['fp32']:>9.1f} {cell['int8']:>9.1f} {cell['speedup']:>9.2f}×"
            )
    columns = f"{'category':<8} {'max':>7} {'mean':>8} {'p99':>7}  routed ≠"
    print(f"\n{'agreement (|int8 - fp32|)':<36} {'images':>6}  {columns}")
    for where, figures in report["agreement"].items():
        for index, (category, cell) in enumerate(figures["categories"].items()):
            label, n, routed = (where, figures["images"], figures["routed_differently"]) if index == 0 else ("", "", "")
            print(
                f"{label:<36} {n!s:>6}  {category:<8} {cell['max_abs_diff']:>7.4f} {cell['mean_abs_diff']:>8.5f} "
                f"{cell['p99_abs_diff']:>7.4f}  {routed!s:>8}"
            )
    quality = report.get("quality")
    if quality:
        print(
            f"\nrealbench test split ({quality['images']} images, {quality['harmful']} harmful), cold-start thresholds"
        )
        print(f"{'':<36} {'fp32':>8} {'int8':>8} {'Δ':>8}")
        for key in quality["fp32"]:
            a, b = quality["fp32"][key], quality["int8"][key]
            print(f"{key:<36} {a:>8.4f} {b:>8.4f} {b - a:>+8.4f}")
        print(f"{'routed differently':<36} {quality['routed_differently']:>8}")
    result = report["verdict"]
    if result["met"] is None:
        print(f"\nwithin {TOLERANCE} AUC and recall: not measured ({result['why'][0]})")
    else:
        detail = "" if result["met"] else f" ({'; '.join(result['why'])})"
        print(f"\nwithin {TOLERANCE} AUC and recall: {'met' if result['met'] else 'NOT met'}{detail}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model version, fp32 or int8 (default: the active version)")
    parser.add_argument("--data", type=Path, default=REALBENCH, help="realbench folder (MANIFEST.csv, SPLITS.csv)")
    parser.add_argument("--split", default="", help="agreement on this split only (default: every image)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--no-quantize", action="store_true", help="fail instead of quantizing a missing int8 version")
    parser.add_argument("--json", type=Path, default=ROOT / "var" / "bench" / "quantization.json")
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    reference, int8 = versions_to_compare(args.model, quantize=not args.no_quantize)
    if not args.data.is_dir():
        print(f"{args.data} not found: latency and scikit-image agreement only", file=sys.stderr)
    report = quantization_report(
        reference=reference,
        quantized=int8,
        data=args.data if args.data.is_dir() else None,
        threads=args.threads,
        repeats=args.repeats,
        split=args.split,
    )
    print_table(report)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2, default=str))
    print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
