"""Fine-tune a harmful-vs-safe classifier on an ImageFolder dataset, fast on a CPU.

    python -m moderation.ml.train --data DIR --out DIR [--backbone efficientnet_lite0] [--unfreeze 0]

The frozen part of the backbone runs once per image and augmented view (:mod:`moderation.ml.features`,
cached on disk); the epochs then train only the head, and the top ``--unfreeze`` stages when asked,
on those cached outputs. Class imbalance is corrected in the loss; early stopping watches the
validation loss; runs are seeded and deterministic. ``OUT`` receives ``model.pt`` (the best
epoch), ``last.pt``, ``metrics.csv`` (one row per epoch) and ``train.json`` (config and results).
Checkpoints are written atomically and carry their config and preprocessing, so ``model.pt`` is
all that serving needs.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import shutil
import sys
import time
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
from torch import nn

from moderation.ml import checkpoints
from moderation.ml.backbones import BACKBONES, DEFAULT_BACKBONE, WeightsUnavailable, backbone_spec
from moderation.ml.calibration import fit_temperature
from moderation.ml.datasets import CLASSES, DatasetError, Sample, class_counts, load_split
from moderation.ml.features import cached_frozen_features
from moderation.ml.metrics import (
    SUGGEST_MIN_PER_CLASS,
    binary_metrics,
    expected_calibration_error,
    threshold_suggestion,
)
from moderation.ml.multilabel import as_binary, category_metrics, check_categories, masked_loss, targets_for
from moderation.ml.network import HarmfulNet
from moderation.ml.tiling import CHOICES as TILINGS
from moderation.ml.tiling import Tiling
from moderation.ml.transforms import eval_transform, train_transform

METRICS_FIELDS = (
    "epoch",
    "train_loss",
    "val_loss",
    "val_accuracy",
    "val_precision",
    "val_recall",
    "val_f1",
    "val_roc_auc",
    "lr",
    "seconds",
)


@dataclass
class TrainConfig:
    data: str
    out: str
    backbone: str = DEFAULT_BACKBONE
    weights: str | None = None  # a pretrained state_dict file for torchvision backbones
    category: str = "weapon"  # the routing category the harmful output is scored as
    # Two or more: a multi-label head, one output per category, from a manifest's category column
    # (a safe image is negative for each, a harmful one positive for its own and ignored for the rest).
    categories: list[str] | None = None
    unfreeze: int = 2  # top backbone stages trained along with the head
    image_size: int | None = None  # default: the backbone's train_size
    resize_mode: str = "squash"  # "squash" keeps the whole frame; "crop" centre-crops (see Preprocessing)
    epochs: int = 60
    patience: int = 8
    batch_size: int = 64
    lr: float = 1e-3
    backbone_lr: float = 1e-4
    weight_decay: float = 1e-4
    dropout: float = 0.2
    pool: str = "avg"  # "avgmax" adds global max pooling (small objects)
    label_smoothing: float = 0.0
    aug_views: int = 4  # augmented copies of each training image cached besides the plain one
    min_crop_area: float = 0.8  # random crops keep at least this share of the picture
    val_fraction: float = 0.2  # used only when the data has no val split
    seed: int = 0
    device: str = "auto"
    workers: int = 0
    cache_dir: str | None = None  # default: OUT/feature-cache
    splits: str | None = None  # a splits file (file,split) for a folder of safe/ and harmful/; default DATA/SPLITS.csv
    refit: bool = False  # after early stopping, retrain on train+val for the best number of epochs
    suggest_min_per_class: int = SUGGEST_MIN_PER_CLASS  # val images of each class behind suggested thresholds
    # How the model version is served (moderation/ml/tiling.py): "none", "2x2" or "3x3" tiles besides
    # the whole frame. Stored in the checkpoint's config; register_model takes it as the default.
    tiling: str = "none"
    calibrate: bool = True  # fit a temperature on the early-stopped model's val logits (moderation.ml.calibration)
    tta_flip: bool = False  # serve the mean logit of the image and its mirror (test-time flip)
    progress: bool = True


@dataclass
class TrainResult:
    checkpoint: Path
    best_epoch: int
    epochs_run: int
    metrics: dict
    seconds: float


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def stratified_split(samples: list[Sample], fraction: float, seed: int) -> tuple[list[Sample], list[Sample]]:
    """Hold out ``fraction`` of each class (seeded) when the dataset brings no val split."""
    rng = random.Random(seed)
    train, val = [], []
    for label in range(len(CLASSES)):
        group = [s for s in samples if s.label == label]
        rng.shuffle(group)
        cut = max(1, round(len(group) * fraction)) if len(group) > 1 else 0
        val.extend(group[:cut])
        train.extend(group[cut:])
    return train, val


def load_train_val(config: TrainConfig) -> tuple[list[Sample], list[Sample]]:
    train = load_split(config.data, "train", splits_file=config.splits)
    try:
        val = load_split(config.data, "val", splits_file=config.splits)
    except DatasetError:
        train, val = stratified_split(train, config.val_fraction, config.seed)
    for name, samples in (("train", train), ("val", val)):
        counts = class_counts(samples)
        if min(counts.values()) == 0:
            raise DatasetError(f"the {name} split needs images of both classes, has {counts}")
    return train, val


def _progress(enabled: bool, **kwargs):
    from tqdm import tqdm

    return tqdm(disable=not enabled, file=sys.stderr, dynamic_ncols=True, **kwargs)


class _Views:
    """Cached frozen outputs of the training set: view 0 plain, views 1.. augmented."""

    def __init__(self, views: list[torch.Tensor], labels: torch.Tensor) -> None:
        self.views = views
        self.labels = labels

    def epoch_batches(self, batch_size: int, generator: torch.Generator):
        count = len(self.labels)
        order = torch.randperm(count, generator=generator)
        choice = torch.randint(len(self.views), (count,), generator=generator)
        for start in range(0, count, batch_size):
            index = order[start : start + batch_size]
            picked = choice[index]
            batch = torch.stack([self.views[int(v)][int(i)] for v, i in zip(picked, index, strict=True)])
            yield batch, self.labels[index]


def _loss_fn(labels: torch.Tensor, smoothing: float, device: torch.device) -> nn.Module:
    if labels.dim() == 2:
        return masked_loss(labels, smoothing, device)
    positives = float(labels.sum())
    negatives = float(len(labels) - positives)
    # Class balance: a harmful example weighs as much in total as a safe one.
    pos_weight = torch.tensor([negatives / max(positives, 1.0)], device=device)
    return _SmoothedBCE(pos_weight, smoothing)


class _SmoothedBCE(nn.Module):
    def __init__(self, pos_weight: torch.Tensor, smoothing: float) -> None:
        super().__init__()
        self.loss = nn.BCEWithLogitsLoss(pos_weight=pos_weight)
        self.smoothing = smoothing

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        targets = labels.float() * (1 - self.smoothing) + 0.5 * self.smoothing
        return self.loss(logits, targets)


@torch.no_grad()
def predict_cached(net: HarmfulNet, features: torch.Tensor, device: torch.device, batch_size: int = 256):
    net.eval()
    logits = [
        net.forward_cached(features[i : i + batch_size].to(device).float()) for i in range(0, len(features), batch_size)
    ]
    return torch.cat(logits).cpu()


def _optimizer(net: HarmfulNet, config: TrainConfig) -> torch.optim.Optimizer:
    groups = [{"params": list(net.head.parameters()), "lr": config.lr}]
    tail = [p for p in net.tail.parameters() if p.requires_grad]
    if tail:
        groups.append({"params": tail, "lr": config.backbone_lr})
    return torch.optim.AdamW(groups, weight_decay=config.weight_decay)


def _run_epochs(net, config, views, val_features, val_labels, device, epochs, *, early_stop, on_epoch):
    """Train for up to ``epochs``; returns (best_state, best_epoch, epochs_run)."""
    optimizer = _optimizer(net, config)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(epochs, 1))
    criterion = _loss_fn(views.labels, config.label_smoothing, device)
    generator = torch.Generator().manual_seed(config.seed)
    best_loss, best_epoch, best_state, stale = float("inf"), 0, None, 0
    for epoch in range(1, epochs + 1):
        started = time.perf_counter()
        net.train()
        total, seen = 0.0, 0
        for features, labels in views.epoch_batches(config.batch_size, generator):
            features, labels = features.to(device).float(), labels.to(device)
            loss = criterion(net.forward_cached(features), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(labels)
            seen += len(labels)
        lr = scheduler.get_last_lr()[0]
        scheduler.step()
        row = {"epoch": epoch, "train_loss": total / seen, "lr": lr}
        if val_features is not None:
            logits = predict_cached(net, val_features, device)
            row["val_loss"] = float(criterion(logits.to(device), val_labels.to(device)))
            row.update(
                {f"val_{k}": v for k, v in binary_metrics(*as_binary(val_labels, torch.sigmoid(logits))).items()}
            )
        row["seconds"] = time.perf_counter() - started
        on_epoch(row)
        watched = row.get("val_loss", row["train_loss"])
        if watched < best_loss - 1e-5:
            best_loss, best_epoch, stale = watched, epoch, 0
            best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        else:
            stale += 1
            if early_stop and stale >= config.patience:
                break
    return best_state, best_epoch, epoch


def fit_cached(
    net: HarmfulNet,
    config: TrainConfig,
    views: list[torch.Tensor],
    labels: torch.Tensor,
    val_features: torch.Tensor,
    val_labels: torch.Tensor,
    device: torch.device,
    *,
    on_epoch=None,
) -> tuple[int, int]:
    """Train ``net`` on cached frozen outputs (``views[0]`` plain, the others augmented, one row per
    label) with early stopping on the validation loss, and leave it at its best epoch. The loop
    :func:`train` runs after caching, reusable by benchmarks that cache once and train many times.
    Returns (best_epoch, epochs_run)."""
    best_state, best_epoch, epochs_run = _run_epochs(
        net,
        config,
        _Views(views, labels),
        val_features,
        val_labels,
        device,
        config.epochs,
        early_stop=True,
        on_epoch=on_epoch or (lambda row: None),
    )
    net.load_state_dict(best_state)
    return best_epoch, epochs_run


class _Reporting:
    """Wraps a progress bar so every update also reaches ``on_progress(stage, fraction)``."""

    def __init__(self, bar, on_progress, stage: str, start: float, span: float, total: int) -> None:
        self.bar, self.on_progress, self.stage = bar, on_progress, stage
        self.start, self.span, self.total, self.done = start, span, max(total, 1), 0

    def update(self, n: int = 1) -> None:
        self.bar.update(n)
        self.done += n
        if self.on_progress is not None:
            self.on_progress(self.stage, self.start + self.span * min(self.done / self.total, 1.0))

    def __getattr__(self, name):
        return getattr(self.bar, name)


def train(config: TrainConfig, *, on_progress=None) -> TrainResult:
    """Train and save ``model.pt``. ``on_progress(stage, fraction)`` is told how far it got:
    frozen features are the first half, epochs the second."""
    started = time.perf_counter()
    seed_everything(config.seed)
    device = resolve_device(config.device)
    out = Path(config.out)
    spec = backbone_spec(config.backbone)
    pre = replace(spec.preprocessing, size=config.image_size or spec.train_size, resize_mode=config.resize_mode)
    Tiling.parse(config.tiling)  # an unknown tiling fails here, before any work
    # What can fail at once fails before OUT exists: no empty output folder is left behind.
    train_samples, val_samples = load_train_val(config)
    outputs = checkpoints.output_categories(asdict(config))
    if len(outputs) > 1:
        check_categories(outputs, train_samples)
    net = HarmfulNet.build(
        config.backbone,
        unfreeze=config.unfreeze,
        dropout=config.dropout,
        pool=config.pool,
        weights_path=config.weights,
        outputs=len(outputs),
    )
    created = not out.exists()
    try:
        return _train(config, out, pre, net, train_samples, val_samples, device, started, on_progress)
    except BaseException:
        if created and not any(out.glob("*.pt")):
            shutil.rmtree(out, ignore_errors=True)  # nothing worth keeping: leave no folder behind
        raise


def _train(config, out, pre, net, train_samples, val_samples, device, started, on_progress) -> TrainResult:
    out.mkdir(parents=True, exist_ok=True)
    cache_dir = Path(config.cache_dir) if config.cache_dir else out / "feature-cache"
    net.to(device).to(memory_format=torch.channels_last)

    weights = config.weights and f"{config.weights}@{Path(config.weights).stat().st_mtime_ns}"
    key = {"backbone": config.backbone, "weights": weights, "unfreeze": config.unfreeze, "pre": pre.as_dict()}
    if config.unfreeze == 0:
        key["pool"] = config.pool  # with nothing unfrozen, the cached output is already pooled
    common = {"device": device, "workers": config.workers, "min_side": pre.resize_to, "cache_dir": cache_dir}
    total = len(train_samples) * (1 + config.aug_views) + len(val_samples)
    with _progress(config.progress, total=total, desc="features", unit="img") as raw_bar:
        bar = _Reporting(raw_bar, on_progress, "features", 0.0, 0.5, total)
        plain = eval_transform(pre)
        views = [
            cached_frozen_features(net, train_samples, plain, key_parts={**key, "view": 0}, progress=bar, **common)
        ]
        augment = train_transform(pre, min_crop_area=config.min_crop_area)
        for view in range(1, config.aug_views + 1):
            seed = config.seed * 1000 + view
            parts = {**key, "view": view, "seed": seed, "min_crop_area": config.min_crop_area}
            views.append(
                cached_frozen_features(net, train_samples, augment, key_parts=parts, seed=seed, progress=bar, **common)
            )
        val_features = cached_frozen_features(
            net, val_samples, plain, key_parts={**key, "view": 0}, progress=bar, **common
        )
        val_mirrored = None
        if config.tta_flip:  # served with the flip: calibrate and suggest on the flip-averaged logits
            mirrored = _mirrored(plain)
            val_mirrored = cached_frozen_features(
                net, val_samples, mirrored, key_parts={**key, "view": "mirrored"}, **common
            )
    heads = checkpoints.output_categories(asdict(config))
    heads = heads if len(heads) > 1 else None  # one output: harmful vs safe, as ever
    train_labels, val_labels = targets_for(train_samples, heads), targets_for(val_samples, heads)

    # Computing features reseeds the global generator and reading them from the cache does not:
    # reseed, so dropout draws the same numbers whether or not the features were cached.
    seed_everything(config.seed)
    initial = {k: v.detach().clone() for k, v in net.state_dict().items()} if config.refit else None
    metrics_path = out / "metrics.csv"
    with (
        metrics_path.open("w", newline="") as handle,
        _progress(config.progress, total=config.epochs, desc="epochs") as raw_bar,
    ):
        bar = _Reporting(raw_bar, on_progress, "epochs", 0.5, 0.5, config.epochs)
        writer = csv.DictWriter(handle, fieldnames=METRICS_FIELDS, extrasaction="ignore")
        writer.writeheader()

        def on_epoch(row: dict) -> None:
            writer.writerow({k: (f"{v:.6f}" if isinstance(v, float) else v) for k, v in row.items()})
            handle.flush()
            bar.update(1)
            bar.set_postfix(loss=f"{row['train_loss']:.4f}", val_loss=f"{row.get('val_loss', float('nan')):.4f}")
            checkpoints.save(out / "last.pt", net, config=config, preprocessing=pre, metrics=row)

        best_epoch, epochs_run = fit_cached(
            net, config, views, train_labels, val_features, val_labels, device, on_epoch=on_epoch
        )
    val_logits = predict_cached(net, val_features, device)
    if val_mirrored is not None:
        val_logits = (val_logits + predict_cached(net, val_mirrored, device)) / 2
    if heads is None:
        calibration = _calibrate(config, val_logits.numpy(), val_labels.numpy())
    else:
        calibration = _uncalibrated(val_labels, val_logits)
    temperature = calibration["temperature"]
    val_scores = torch.sigmoid(val_logits / temperature)
    metrics = {
        "val": {**binary_metrics(*as_binary(val_labels, val_scores)), "ece": calibration["val_ece_after"]},
        "calibration": calibration,
        "best_epoch": best_epoch,
        "epochs_run": epochs_run,
        "train_counts": class_counts(train_samples),
        "val_counts": class_counts(val_samples),
    }
    if heads is None:
        labels, scores = val_labels.numpy(), val_scores.numpy()
        suggested, notes = threshold_suggestion(labels, scores, min_per_class=config.suggest_min_per_class)
        metrics["suggested_thresholds"] = {config.category: suggested} if suggested else {}
        metrics["threshold_notes"] = notes
    else:
        metrics.update(category_metrics(heads, val_samples, val_labels, val_scores, config.suggest_min_per_class))
    if config.refit:
        # The early-stopped epoch count, retrained from the same start on train and val together.
        net.load_state_dict(initial)
        # Validation images join every view with their plain (unaugmented) output.
        merged = _Views([torch.cat([view, val_features]) for view in views], torch.cat([train_labels, val_labels]))
        seed_everything(config.seed)
        with _progress(config.progress, total=best_epoch, desc="refit on train+val") as raw_bar:
            bar = _Reporting(raw_bar, on_progress, "refit", 1.0, 0.0, best_epoch)
            refitting = {"early_stop": False, "on_epoch": lambda row: bar.update(1)}
            _run_epochs(net, config, merged, None, None, device, best_epoch, **refitting)
        metrics["refit_epochs"] = best_epoch
        # The refit model has no held-out data left to fit a temperature on: it keeps the one fitted
        # on val before the refit (docs/thresholds.md says how far that holds).
        calibration["fitted_on"] = "val, early-stopped model (kept for the model refitted on train+val)"
    path = checkpoints.save(
        out / "model.pt", net, config=config, preprocessing=pre, metrics=metrics, temperature=temperature
    )
    seconds = time.perf_counter() - started
    metrics["seconds"] = seconds
    summary = {"config": asdict(config), "metrics": metrics, "finished_at": datetime.now(UTC).isoformat()}
    (out / "train.json").write_text(json.dumps(summary, indent=2, default=str))
    return TrainResult(checkpoint=path, best_epoch=best_epoch, epochs_run=epochs_run, metrics=metrics, seconds=seconds)


def _mirrored(plain):
    from torchvision.transforms import v2

    return v2.Compose([plain, v2.RandomHorizontalFlip(p=1.0)])


def _uncalibrated(labels: torch.Tensor, logits: torch.Tensor) -> dict:
    """A multi-label head is served uncalibrated (T = 1): one temperature fitted on masked labels of
    several outputs is not done yet; its ECE (harmful = any output) is still reported."""
    harmful, scores = as_binary(labels, torch.sigmoid(logits))
    ece = expected_calibration_error(harmful, scores)
    return {
        "temperature": 1.0,
        "note": "multi-label head: not calibrated (T = 1)",
        "fitted_on": "",
        "val_ece_before": ece,
        "val_ece_after": ece,
    }


def _calibrate(config: TrainConfig, logits: np.ndarray, labels: np.ndarray) -> dict:
    """The temperature and what it does to the validation ECE (raw scale, then calibrated)."""
    fit = fit_temperature(logits, labels) if config.calibrate else None
    temperature = fit.temperature if fit else 1.0
    before = expected_calibration_error(labels, 1 / (1 + np.exp(-logits)))
    after = expected_calibration_error(labels, 1 / (1 + np.exp(-logits / temperature)))
    return {
        **(fit.as_dict() if fit else {"temperature": 1.0, "note": "not fitted: --no-calibrate; T = 1"}),
        "fitted_on": "val, early-stopped model",
        "val_ece_before": before,
        "val_ece_after": after,
    }


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    parser = parser or argparse.ArgumentParser(prog="python -m moderation.ml.train", description=__doc__.split("\n")[0])
    defaults = TrainConfig(data="", out="")
    parser.add_argument(
        "--data",
        required=True,
        help="ImageFolder root: train/ and val/ (each with safe/, harmful/), or safe/ and harmful/ with a splits file",
    )
    parser.add_argument(
        "--splits", help="CSV with file,split columns for a folder of safe/ and harmful/ (default: DATA/SPLITS.csv)"
    )
    parser.add_argument("--out", required=True, help="output folder for model.pt, metrics.csv, train.json")
    parser.add_argument(
        "--backbone",
        default=defaults.backbone,
        choices=sorted(BACKBONES),
        help="; ".join(f"{name}: {spec.description}" for name, spec in BACKBONES.items()),
    )
    parser.add_argument("--weights", help="pretrained state_dict for a torchvision backbone")
    parser.add_argument("--category", default=defaults.category, help="routing category of the harmful score")
    parser.add_argument(
        "--categories",
        type=lambda value: [name.strip() for name in value.split(",") if name.strip()],
        help="two or more comma-separated categories: one output each (multi-label), learned from the manifest's "
        "category column (a feedback export); default: one harmful output routed as --category",
    )
    parser.add_argument("--unfreeze", type=int, default=defaults.unfreeze, help="top backbone stages to fine-tune")
    parser.add_argument("--image-size", type=int, help="input size in pixels (default: the backbone's)")
    parser.add_argument("--resize-mode", default=defaults.resize_mode, choices=("squash", "crop"))
    parser.add_argument(
        "--pool", default=defaults.pool, choices=("avg", "avgmax"), help="global pooling before the head"
    )
    parser.add_argument(
        "--tiling",
        default=defaults.tiling,
        choices=TILINGS,
        help="serve the model with tiled scoring: the whole frame plus 2x2 or 3x3 overlapping tiles of wide or "
        "large frames, max over them (stored in the checkpoint; registration uses it)",
    )
    for name in ("epochs", "patience", "batch_size", "aug_views", "seed", "workers", "suggest_min_per_class"):
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, default=getattr(defaults, name))
    for name in ("lr", "backbone_lr", "weight_decay", "dropout", "label_smoothing", "val_fraction", "min_crop_area"):
        parser.add_argument(f"--{name.replace('_', '-')}", type=float, default=getattr(defaults, name))
    parser.add_argument("--device", default=defaults.device, help="auto (CUDA when present), cpu, cuda, cuda:1 ...")
    parser.add_argument("--cache-dir", help="where cached backbone outputs go (default OUT/feature-cache)")
    parser.add_argument(
        "--refit",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="after early stopping on val, retrain on train+val for that many epochs (default; --no-refit keeps "
        "the early-stopped model)",
    )
    parser.add_argument(
        "--calibrate",
        action=argparse.BooleanOptionalAction,
        default=defaults.calibrate,
        help="fit a temperature on the early-stopped model's val logits so scores are calibrated probabilities "
        "(default; --no-calibrate keeps T = 1)",
    )
    parser.add_argument(
        "--tta-flip",
        action=argparse.BooleanOptionalAction,
        default=defaults.tta_flip,
        help="serve the mean logit of each image and its mirror (twice the network's cost per image)",
    )
    parser.add_argument("--no-progress", dest="progress", action="store_false")
    return parser


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    names = TrainConfig.__dataclass_fields__
    return TrainConfig(**{k: v for k, v in vars(args).items() if k in names})


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result = train(config_from_args(args))
    except (DatasetError, WeightsUnavailable, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(result_summary(result))
    return 0


def result_summary(result: TrainResult) -> str:
    """What a training run says when it ends, naming which model each figure describes."""
    val = result.metrics["val"]
    figures = (
        f"val accuracy {val['accuracy']:.4f}, precision {val['precision']:.4f}, recall {val['recall']:.4f}, "
        f"ROC AUC {val['roc_auc']:.4f}"
    )
    lines = [f"best epoch {result.best_epoch}/{result.epochs_run} on val: {figures}"]
    calibration = result.metrics.get("calibration")
    if calibration:
        lines.append(
            f"calibration: temperature {calibration['temperature']:.4f} fitted on {calibration['fitted_on']}; "
            f"val ECE {calibration['val_ece_before']:.4f} before, {calibration['val_ece_after']:.4f} after"
            + (f" ({calibration['note']})" if calibration.get("note") else "")
        )
    if "refit_epochs" in result.metrics:
        lines.append(
            f"model.pt was then refitted on train+val for {result.metrics['refit_epochs']} epochs: the val figures "
            "and the suggested thresholds above describe the early-stopped model before the refit (val is in the "
            "refit's training data now); evaluate model.pt on a test split"
        )
    for name, figures in result.metrics.get("val_by_category", {}).items():
        lines.append(
            f"  {name}: ROC AUC {figures['roc_auc']}, recall {figures['recall']:.4f} "
            f"({figures['harmful']} harmful, {figures['safe']} safe val images)"
        )
    if "nudity_head" in result.metrics:
        lines.append(f"nudity: {result.metrics['nudity_head']['why']}")
    if result.metrics["suggested_thresholds"]:
        suggested = result.metrics["suggested_thresholds"]
        lines.append(f"suggested thresholds (from those val scores, calibrated): {suggested}")
    lines.extend(result.metrics.get("threshold_notes", []))
    lines.append(f"{result.seconds:.0f} s; wrote {result.checkpoint}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
