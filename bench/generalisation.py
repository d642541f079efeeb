"""Generalisation and learning from few labels, on realbench, with Vigil's own training code.

    python -m bench.generalisation --data ../shared/datasets/realbench [--backbone efficientnet_lite0]
        [--sizes 25,50,100,200,400] [--seeds 2] [--sources a/b,c/d] [--quick]

1. Leave-one-source-out (LOSO): for every source with >= 40 photos, train on the other sources'
   train split (their val split for early stopping) and test on the held-out source. Most sources
   are one class only (banknotes and phones are all safe), so a class that the held-out source has
   fewer than 20 photos of is completed with the *other* sources' photos of that class from their
   test split, which no fold trains on. Recipes: the zero-shot prior (the offline baseline, no
   training), a linear probe (head only, on frozen pooled features) and fine-tuning (top 2 stages).
2. After k labels (k = 100, or half a source smaller than 200): the same folds with k photos of the
   held-out source added to training (the other sources stay: rehearsal), tested on the rest of
   the source; and the other sources' test-split AUC before vs after (forgetting).
3. Learning curves: 25..400 labels drawn (stratified, seeded) from realbench's train split,
   tested on its test split, probe vs fine-tuning, and "most informative first" (uncertainty
   sampling, in rounds) against random draws; the label count below which the probe wins.
4. A learned combination (logistic regression on val) of the zero-shot prior and the fine-tuned
   score, against the fine-tuned score alone, on the LOSO folds.

Every model trains through :func:`moderation.ml.train.fit_cached`, the epoch loop ``train`` runs,
on frozen backbone outputs computed once per image and view and cached under ``--cache-dir``
(git-ignored ``var/``): a rerun trains only. The probe's pooled features are the cached maps run
through the pretrained top stages (what ``HarmfulNet(unfreeze=0)`` computes, without a second
backbone pass). Images are read in place; nothing trained here is kept. Prints tables and
writes ``results.json`` in ``--out``.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import random
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

MIN_SOURCE_PHOTOS = 40  # a source smaller than this is not held out on its own
MIN_CLASS_PHOTOS = 20  # a held-out class with fewer photos is completed from the other sources' test split
HELD_LABELS = 100
SIZES = (25, 50, 100, 200, 400)
RECIPES = {"probe": 0, "fine-tune": 2}  # recipe -> top stages trained along with the head


# --- pure functions: rows, folds, draws, selection -------------------------------------------------


@dataclass(frozen=True)
class Photo:
    file: str
    label: int  # 0 safe, 1 harmful
    source: str
    split: str
    category: str


def read_rows(root: Path) -> list[Photo]:
    """realbench's MANIFEST.csv joined with SPLITS.csv, in manifest order."""
    splits = {row["file"]: row["split"] for row in csv.DictReader((root / "SPLITS.csv").open())}
    return [
        Photo(row["file"], int(row["label"] == "harmful"), row["source_repo"], splits[row["file"]], row["category"])
        for row in csv.DictReader((root / "MANIFEST.csv").open())
    ]


def eligible_sources(rows: list[Photo], minimum: int = MIN_SOURCE_PHOTOS) -> list[str]:
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.source] = counts.get(row.source, 0) + 1
    return sorted(source for source, n in counts.items() if n >= minimum)


@dataclass
class Fold:
    source: str
    train: list[int]  # the other sources' train split (+ labelled photos of the source, if any)
    val: list[int]  # the other sources' val split (+ a fifth of those labelled photos)
    test: list[int]  # the source's (remaining) photos + the completion
    held: list[int]  # the source's photos in ``test``
    completion: list[int]  # other sources' test-split photos of a class the source has too few of
    others_test: list[int]  # the other sources' test split: what forgetting is measured on
    labelled: list[int] = field(default_factory=list)  # photos of the source given to training


def completion_for(rows: list[Photo], source: str, held: list[int], minimum: int = MIN_CLASS_PHOTOS) -> list[int]:
    """Other sources' test-split photos of each class that ``held`` has fewer than ``minimum`` of."""
    out = []
    for label in (0, 1):
        if sum(rows[i].label == label for i in held) < minimum:
            out += [i for i, r in enumerate(rows) if r.source != source and r.split == "test" and r.label == label]
    return out


def loso_fold(rows: list[Photo], source: str) -> Fold:
    others = [i for i, r in enumerate(rows) if r.source != source]
    held = [i for i, r in enumerate(rows) if r.source == source]
    completion = completion_for(rows, source, held)
    return Fold(
        source=source,
        train=[i for i in others if rows[i].split == "train"],
        val=[i for i in others if rows[i].split == "val"],
        test=held + completion,
        held=held,
        completion=completion,
        others_test=[i for i in others if rows[i].split == "test"],
    )


def stratified_draw(indices: list[int], labels: list[int], count: int, seed: int) -> list[int]:
    """``count`` of ``indices``, each class in proportion to the pool (largest remainder), seeded."""
    rng = random.Random(seed)
    groups = {label: [i for i in indices if labels[i] == label] for label in (0, 1)}
    count = min(count, len(indices))
    exact = {label: count * len(group) / len(indices) for label, group in groups.items()}
    take = {label: math.floor(share) for label, share in exact.items()}
    for label in sorted(exact, key=lambda k: exact[k] - take[k], reverse=True)[: count - sum(take.values())]:
        take[label] += 1
    drawn = []
    for label, group in groups.items():
        drawn += rng.sample(group, take[label])
    return sorted(drawn)


def split_labelled(indices: list[int], labels: list[int], seed: int, fraction: float = 0.2) -> tuple[list, list]:
    """Train/val of a set of labels as ``train`` splits a deployment's export with no val split:
    ``fraction`` of each class (at least one when the class has two or more) to val, seeded."""
    rng = random.Random(seed)
    train, val = [], []
    for label in (0, 1):
        group = sorted(i for i in indices if labels[i] == label)
        rng.shuffle(group)
        cut = max(1, round(len(group) * fraction)) if len(group) > 1 else 0
        val += group[:cut]
        train += group[cut:]
    return sorted(train), sorted(val)


def held_label_count(held: int, wanted: int = HELD_LABELS) -> int:
    """``wanted`` labels of a held-out source, or half of a source too small to leave a test set."""
    return min(wanted, held // 2)


def with_source_labels(rows: list[Photo], fold: Fold, count: int, seed: int) -> Fold:
    """``fold`` with ``count`` photos of its source labelled (stratified draw) and added to training
    (four fifths to train, one fifth to val); the rest of the source is the test set."""
    labels = [r.label for r in rows]
    labelled = stratified_draw(fold.held, labels, count, seed)
    train, val = split_labelled(labelled, labels, seed)
    chosen = set(labelled)
    held = [i for i in fold.held if i not in chosen]
    completion = completion_for(rows, fold.source, held)
    return Fold(
        source=fold.source,
        train=sorted(fold.train + train),
        val=sorted(fold.val + val),
        test=held + completion,
        held=held,
        completion=completion,
        others_test=fold.others_test,
        labelled=labelled,
    )


def most_uncertain(scores: dict[int, float], count: int) -> list[int]:
    """The ``count`` candidates whose P(harmful) is nearest the decision boundary (0.5), ties by index."""
    return sorted(sorted(scores, key=lambda i: (abs(scores[i] - 0.5), i))[:count])


def probe_cutoff(curve: dict[int, dict[str, float]]) -> int | None:
    """The label count from which fine-tuning matches or beats the probe at every size measured:
    below it the probe is the better recipe. ``curve``: size -> {"probe": auc, "fine-tune": auc}.
    None when fine-tuning never catches up."""
    cutoff = None
    for size in sorted(curve, reverse=True):
        if curve[size]["fine-tune"] >= curve[size]["probe"]:
            cutoff = size
        else:
            break
    return cutoff


def auc(labels, scores) -> float:
    from sklearn.metrics import roc_auc_score

    labels = np.asarray(labels)
    return float(roc_auc_score(labels, scores)) if len(set(labels.tolist())) == 2 else float("nan")


# --- cached backbone outputs and prior scores ------------------------------------------------------


class Bank:
    """Frozen backbone outputs of every photo: ``maps[v]`` (v=0 plain, 1.. augmented) for
    fine-tuning, ``pooled[v]`` for the probe; and the zero-shot prior's score of every photo."""

    def __init__(self, rows: list[Photo], root: Path, args) -> None:
        from dataclasses import replace

        import torch

        from moderation.ml.backbones import backbone_spec
        from moderation.ml.datasets import Sample
        from moderation.ml.features import cached_frozen_features
        from moderation.ml.network import HarmfulNet
        from moderation.ml.train import TrainConfig
        from moderation.ml.transforms import eval_transform, train_transform

        self.rows, self.args = rows, args
        self.labels = torch.tensor([r.label for r in rows])
        spec = backbone_spec(args.backbone)
        size = args.image_size or spec.train_size
        defaults = TrainConfig(data="", out="")
        pre = replace(spec.preprocessing, size=size, resize_mode="squash")  # as train() builds it
        self.pre = pre
        net = HarmfulNet.build(args.backbone, unfreeze=RECIPES["fine-tune"]).to(memory_format=torch.channels_last)
        key = {"backbone": args.backbone, "weights": None, "unfreeze": RECIPES["fine-tune"], "pre": pre.as_dict()}
        common = {"device": torch.device("cpu"), "min_side": pre.resize_to, "cache_dir": Path(args.cache_dir)}
        samples = [Sample(root / r.file, r.label) for r in rows]
        chunks = [[i for i, r in enumerate(rows) if r.split == split] for split in ("train", "val", "test")]
        self.order = torch.tensor([i for chunk in chunks for i in chunk])
        self.maps = []
        for view in range(args.aug_views + 1):
            if view == 0:
                transform, parts, seed = eval_transform(pre), {**key, "view": 0}, 0
            else:
                seed = view  # train() uses seed * 1000 + view with seed 0
                transform = train_transform(pre, min_crop_area=defaults.min_crop_area)
                parts = {**key, "view": view, "seed": seed, "min_crop_area": defaults.min_crop_area}
            parts_out = []
            for chunk in chunks:
                started = time.perf_counter()
                part = cached_frozen_features(
                    net, [samples[i] for i in chunk], transform, key_parts=parts, seed=seed, **common
                )
                parts_out.append(part)
                log(f"features view {view}: {len(chunk)} photos ({time.perf_counter() - started:.0f} s)")
            stacked = torch.cat(parts_out)
            ordered = torch.empty_like(stacked)
            ordered[self.order] = stacked
            self.maps.append(ordered)
        self.pooled = [self._pool(net, maps) for maps in self.maps]
        self.root = root
        self._prior = None

    @property
    def prior(self) -> np.ndarray:
        """The zero-shot prior's scores, computed (or read from the cache) when first needed."""
        if self._prior is None:
            self._prior = prior_scores(self.rows, self.root, Path(self.args.cache_dir))
        return self._prior

    @staticmethod
    def _pool(net, maps):
        """What HarmfulNet(unfreeze=0).frozen_features gives: the pretrained top stages, pooled."""
        import torch

        net.eval()
        with torch.inference_mode():
            return torch.cat(
                [net.pool(net.tail(maps[i : i + 256].float())).to(torch.float16) for i in range(0, len(maps), 256)]
            )


def prior_scores(rows: list[Photo], root: Path, cache_dir: Path) -> np.ndarray:
    """The zero-shot ImageNet weapon prior (the offline baseline's weapon score) of every photo,
    cached by file list."""
    from media.images import open_rgb
    from moderation.ml.baseline import MIN_DECODE_SIDE, BaselineClassifier

    digest = hashlib.sha256("\n".join(f"{r.file}:{(root / r.file).stat().st_size}" for r in rows).encode())
    path = cache_dir / f"prior-{digest.hexdigest()[:24]}.npy"
    if path.is_file():
        return np.load(path)
    started = time.perf_counter()
    classifier = BaselineClassifier()
    scores = []
    for start in range(0, len(rows), 32):
        images = [open_rgb(root / r.file, min_side=MIN_DECODE_SIDE) for r in rows[start : start + 32]]
        scores += classifier.weapon_scores(images)
    scores = np.asarray(scores, dtype=np.float64)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, scores)
    log(f"zero-shot prior: {len(scores)} photos ({time.perf_counter() - started:.0f} s)")
    return scores


class Trainer:
    """Trains a recipe on index subsets of the bank, always from the same pretrained start."""

    def __init__(self, bank: Bank, args) -> None:
        from dataclasses import replace

        import torch

        from moderation.ml.network import HarmfulNet
        from moderation.ml.train import TrainConfig

        self.bank, self.args = bank, args
        self.nets, self.starts = {}, {}
        for recipe, unfreeze in RECIPES.items():
            net = HarmfulNet.build(args.backbone, unfreeze=unfreeze)
            net.trunk = torch.nn.Sequential()  # never run: training reads cached outputs
            self.nets[recipe] = net
            self.starts[recipe] = {k: v.detach().clone() for k, v in net.state_dict().items()}
        self.config = TrainConfig(data="", out="", backbone=args.backbone, epochs=args.epochs, progress=False)
        if args.patience is not None:
            self.config = replace(self.config, patience=args.patience)
        self.runs = 0
        self.seconds = 0.0

    def fit(self, recipe: str, train: list[int], val: list[int], seed: int):
        """A trained net (``recipe``) on photos ``train``, early-stopped on ``val``."""
        from dataclasses import replace

        import torch

        from moderation.ml.train import fit_cached, seed_everything

        started = time.perf_counter()
        net = self.nets[recipe]
        net.load_state_dict(self.starts[recipe])
        config = replace(self.config, unfreeze=RECIPES[recipe], seed=seed)
        seed_everything(seed)
        source = self.bank.pooled if recipe == "probe" else self.bank.maps
        index, val_index = torch.tensor(train), torch.tensor(val)
        views = [view[index] for view in source]
        best, ran = fit_cached(
            net,
            config,
            views,
            self.bank.labels[index],
            source[0][val_index],
            self.bank.labels[val_index],
            torch.device("cpu"),
        )
        self.runs += 1
        self.seconds += time.perf_counter() - started
        return net, best, ran

    def scores(self, recipe: str, net, indices: list[int]) -> np.ndarray:
        import torch

        from moderation.ml.train import predict_cached

        source = self.bank.pooled if recipe == "probe" else self.bank.maps
        if not indices:
            return np.zeros(0)
        logits = predict_cached(net, source[0][torch.tensor(indices)], torch.device("cpu"))
        return torch.sigmoid(logits).numpy().astype(np.float64)


# --- the experiments -------------------------------------------------------------------------------


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def loso(rows, bank, trainer, sources, args) -> dict:
    labels = np.array([r.label for r in rows])
    out = {}
    for source in sources:
        fold = loso_fold(rows, source)
        held_classes = {c: int(sum(labels[i] == c for i in fold.held)) for c in (0, 1)}
        entry = {
            "held": len(fold.held),
            "held_safe": held_classes[0],
            "held_harmful": held_classes[1],
            "completion": len(fold.completion),
            "train": len(fold.train),
            "val": len(fold.val),
        }
        k = held_label_count(len(fold.held), args.held_labels)
        after = with_source_labels(rows, fold, k, seed=0)
        entry["after"] = {"labels": k, "test": len(after.test), "held_left": len(after.held)}
        tuned_val_scores = tuned_test_scores = None
        for recipe in RECIPES:
            net, best, ran = trainer.fit(recipe, fold.train, fold.val, seed=0)
            test_scores = trainer.scores(recipe, net, fold.test)
            result = {
                "auc": auc(labels[fold.test], test_scores),
                "auc_on_after_test": auc(labels[after.test], trainer.scores(recipe, net, after.test)),
                "others_test_auc": auc(labels[fold.others_test], trainer.scores(recipe, net, fold.others_test)),
                "best_epoch": best,
                "epochs_run": ran,
            }
            if recipe == "fine-tune":
                tuned_val_scores, tuned_test_scores = trainer.scores(recipe, net, fold.val), test_scores
            entry[recipe] = result
            log(f"LOSO {source} {recipe}: AUC {result['auc']:.3f} with no labels")
            if k == 0:  # --held-labels 0: the zero-label folds only
                continue
            net, best, ran = trainer.fit(recipe, after.train, after.val, seed=0)
            entry["after"][recipe] = {
                "auc": auc(labels[after.test], trainer.scores(recipe, net, after.test)),
                "others_test_auc": auc(labels[after.others_test], trainer.scores(recipe, net, after.others_test)),
                "best_epoch": best,
            }
            log(
                f"LOSO {source} {recipe}: {entry['after'][recipe]['auc']:.3f} after {k} labels (same test before: "
                f"{result['auc_on_after_test']:.3f}); other sources {result['others_test_auc']:.3f} -> "
                f"{entry['after'][recipe]['others_test_auc']:.3f}"
            )
        # The prior last: it may still be being computed by another process when a fold starts.
        entry["zero_shot"] = {
            "auc": auc(labels[fold.test], bank.prior[fold.test]),
            "others_test_auc": auc(labels[fold.others_test], bank.prior[fold.others_test]),
        }
        entry["after"]["zero_shot_auc"] = auc(labels[after.test], bank.prior[after.test])
        entry["fine-tune"]["combination"] = combination(bank, labels, fold, tuned_val_scores, tuned_test_scores)
        log(f"LOSO {source} zero-shot prior: AUC {entry['zero_shot']['auc']:.3f}")
        out[source] = entry
        if args.out is not None:
            save({"config": {k: str(v) for k, v in vars(args).items()}, "loso": out}, args.out)
    return out


def combination(bank, labels, fold, val_scores, test_scores) -> dict:
    """Logistic regression on val over logit(prior) and logit(fine-tuned), applied to the test set."""
    from sklearn.linear_model import LogisticRegression

    def logit(p):
        p = np.clip(p, 1e-6, 1 - 1e-6)
        return np.log(p / (1 - p))

    def design(prior, tuned):
        return np.column_stack([logit(prior), logit(tuned)])

    model = LogisticRegression(C=1.0, max_iter=1000, class_weight="balanced")
    model.fit(design(bank.prior[fold.val], val_scores), labels[fold.val])
    combined = model.predict_proba(design(bank.prior[fold.test], test_scores))[:, 1]
    return {"auc": auc(labels[fold.test], combined), "weights": model.coef_[0].tolist()}


def curves(rows, trainer, args) -> dict:
    """Test AUC after training on ``size`` labels of the train split: random draws per recipe,
    and uncertainty sampling (rounds up to each size, starting from the same first random draw)."""
    labels_list = [r.label for r in rows]
    labels = np.array(labels_list)
    pool = [i for i, r in enumerate(rows) if r.split == "train"]
    test = [i for i, r in enumerate(rows) if r.split == "test"]
    out: dict = {"random": {}, "uncertainty": {}}
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        for size in args.sizes:
            drawn = stratified_draw(pool, labels_list, size, seed=1000 + seed)
            train, val = split_labelled(drawn, labels_list, seed)
            for recipe in RECIPES:
                net, _best, _ran = trainer.fit(recipe, train, val, seed=seed)
                value = auc(labels[test], trainer.scores(recipe, net, test))
                out["random"].setdefault(recipe, {}).setdefault(size, []).append(value)
                log(f"curve random seed {seed} {size} labels {recipe}: test AUC {value:.3f}")
        if not args.uncertainty:
            continue
        for recipe in RECIPES:
            labelled = stratified_draw(pool, labels_list, args.sizes[0], seed=1000 + seed)
            for size in args.sizes:
                if size > len(labelled):
                    candidates = sorted(set(pool) - set(labelled))
                    scores = trainer.scores(recipe, net, candidates)
                    picked = most_uncertain(dict(zip(candidates, scores, strict=True)), size - len(labelled))
                    labelled = sorted(labelled + picked)
                train, val = split_labelled(labelled, labels_list, seed)
                net, _best, _ran = trainer.fit(recipe, train, val, seed=seed)
                value = auc(labels[test], trainer.scores(recipe, net, test))
                share = float(labels[labelled].mean())
                out["uncertainty"].setdefault(recipe, {}).setdefault(size, []).append(value)
                log(f"curve uncertainty seed {seed} {size} labels {recipe}: test AUC {value:.3f} ({share:.0%} harmful)")
    return out


# --- reporting -------------------------------------------------------------------------------------


def mean(values) -> float:
    values = [v for v in values if not math.isnan(v)]
    return statistics.fmean(values) if values else float("nan")


def summarise(results: dict) -> dict:
    summary: dict = {}
    folds = results.get("loso", {})
    if folds:
        for recipe in ("zero_shot", *RECIPES):
            values = [entry[recipe]["auc"] for entry in folds.values()]
            worst = min(folds, key=lambda s: folds[s][recipe]["auc"])
            worst_auc = folds[worst][recipe]["auc"]
            summary[f"loso_{recipe}"] = {"mean": mean(values), "worst": worst_auc, "worst_source": worst}
        summary["loso_combination"] = {"mean": mean([e["fine-tune"]["combination"]["auc"] for e in folds.values()])}
        for recipe in RECIPES if all(recipe in e["after"] for e in folds.values()) else ():
            summary[f"after_{recipe}"] = {
                "mean": mean([e["after"][recipe]["auc"] for e in folds.values()]),
                "worst": min(e["after"][recipe]["auc"] for e in folds.values()),
                "same_test_before_mean": mean([e[recipe]["auc_on_after_test"] for e in folds.values()]),
                "others_before_mean": mean([e[recipe]["others_test_auc"] for e in folds.values()]),
                "others_after_mean": mean([e["after"][recipe]["others_test_auc"] for e in folds.values()]),
                "others_worst_drop": min(
                    e["after"][recipe]["others_test_auc"] - e[recipe]["others_test_auc"] for e in folds.values()
                ),
            }
    curve = results.get("curves", {}).get("random")
    if curve:
        means = {int(size): {r: mean(curve[r][size]) for r in RECIPES} for size in curve["probe"]}
        summary["curve_means"] = means
        summary["probe_below"] = probe_cutoff(means)
    return summary


def print_report(results: dict) -> None:
    summary = results["summary"]
    folds = results.get("loso", {})
    if folds:
        print(f"\nLeave-one-source-out ({results['config']['backbone']}; test = the source + completion, AUC)")
        print(f"{'held-out source':<38}{'photos':>7}{'+compl':>7}{'prior':>7}{'probe':>7}{'fine':>7}{'combo':>7}")
        for source, e in folds.items():
            print(
                f"{source:<38}{e['held']:>7}{e['completion']:>7}{e['zero_shot']['auc']:>7.3f}"
                f"{e['probe']['auc']:>7.3f}{e['fine-tune']['auc']:>7.3f}{e['fine-tune']['combination']['auc']:>7.3f}"
            )
        row = summary
        print(
            f"{'mean':<52}{row['loso_zero_shot']['mean']:>7.3f}{row['loso_probe']['mean']:>7.3f}"
            f"{row['loso_fine-tune']['mean']:>7.3f}{row['loso_combination']['mean']:>7.3f}"
        )
        print(
            f"{'worst':<52}{row['loso_zero_shot']['worst']:>7.3f}{row['loso_probe']['worst']:>7.3f}"
            f"{row['loso_fine-tune']['worst']:>7.3f}"
        )
        if "after_probe" not in summary:
            return print_curves(results)
        print("\nAfter k labels of the held-out source (rest of the source + completion; other sources' test split)")
        columns = ("k", 5), ("recipe", 10), ("before", 8), ("after", 8), ("others before", 15), ("after", 7)
        print(f"{'held-out source':<38}" + "".join(f"{name:>{width}}" for name, width in columns))
        for source, e in folds.items():
            for recipe in RECIPES:
                print(
                    f"{source:<38}{e['after']['labels']:>5}{recipe:>10}{e[recipe]['auc_on_after_test']:>8.3f}"
                    f"{e['after'][recipe]['auc']:>8.3f}{e[recipe]['others_test_auc']:>15.3f}"
                    f"{e['after'][recipe]['others_test_auc']:>7.3f}"
                )
        for recipe in RECIPES:
            s = summary[f"after_{recipe}"]
            print(
                f"  {recipe}: mean {s['same_test_before_mean']:.3f} -> {s['mean']:.3f} (worst {s['worst']:.3f}); "
                f"other sources {s['others_before_mean']:.3f} -> {s['others_after_mean']:.3f} "
                f"(largest drop {s['others_worst_drop']:+.3f})"
            )
    print_curves(results)


def print_curves(results: dict) -> None:
    summary = results["summary"]
    curve = results.get("curves")
    if curve:
        print("\nLearning curve: realbench test AUC after training on N labels of the train split (mean of draws)")
        sizes = sorted(int(s) for s in curve["random"]["probe"])
        print(f"{'recipe':<28}" + "".join(f"{s:>8}" for s in sizes))
        for kind in ("random", "uncertainty"):
            for recipe in RECIPES:
                if recipe in curve.get(kind, {}):
                    cells = "".join(f"{mean(curve[kind][recipe][s]):>8.3f}" for s in sizes)
                    print(f"{recipe + ' (' + kind + ')':<28}{cells}")
        cutoff = summary.get("probe_below")
        if cutoff is None:
            print("fine-tuning never caught up with the probe on this curve: use the probe")
        elif cutoff == sizes[0]:
            print(f"fine-tuning matches or beats the probe at every size measured (from {cutoff} labels)")
        else:
            print(f"probe beats fine-tuning below {cutoff} labels; fine-tuning from {cutoff} on")


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/datasets/realbench"))
    parser.add_argument("--out", type=Path, default=Path("bench/results/generalisation"))
    parser.add_argument("--cache-dir", type=Path, default=Path("var/bench-generalisation/feature-cache"))
    parser.add_argument("--backbone", default=None, help="default efficientnet_lite2 (Vigil's default)")
    parser.add_argument("--image-size", type=int, default=None, help="default: the backbone's train size (288)")
    parser.add_argument("--aug-views", type=int, default=None, help="augmented views cached per photo (default 4)")
    parser.add_argument("--epochs", type=int, default=None, help="most epochs per run (default train's 60)")
    parser.add_argument("--patience", type=int, default=None, help="early-stopping patience (default train's 8)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (1 is fastest on a busy machine)")
    parser.add_argument(
        "--report", nargs="+", type=Path, help="print the report of earlier results.json files (merged) and exit"
    )
    parser.add_argument("--sizes", default=None, help="learning-curve label counts (default 25,50,100,200,400)")
    parser.add_argument("--seeds", type=int, default=None, help="draws per learning-curve size (default 2)")
    parser.add_argument("--first-seed", type=int, default=0, help="number of the first draw (to add draws later)")
    parser.add_argument("--sources", default=None, help="comma-separated sources to hold out (default: all >= 40)")
    parser.add_argument(
        "--held-labels", type=int, default=HELD_LABELS, help="labels of the held-out source (0: zero-label folds only)"
    )
    parser.add_argument("--no-uncertainty", dest="uncertainty", action="store_false")
    parser.add_argument("--skip", default="", help="comma-separated parts to skip: loso, curves")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a few minutes: Lite0 at 160 px, no augmented view, the smallest source, sizes 25,100, 1 draw, 10 epochs",
    )
    args = parser.parse_args(argv)
    quick = {"backbone": "efficientnet_lite0", "image_size": 160, "aug_views": 0, "epochs": 10, "sizes": "25,100"}
    full = {"backbone": "efficientnet_lite2", "image_size": None, "aug_views": 4, "epochs": 60, "sizes": None}
    for name, value in (quick if args.quick else full).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    args.sizes = [int(s) for s in (args.sizes or ",".join(map(str, SIZES))).split(",")]
    args.seeds = args.seeds or (1 if args.quick else 2)
    return args


def merge(paths: list[Path]) -> dict:
    """Results of several runs (say LOSO sources split over processes, curves in another) as one."""
    merged: dict = {"loso": {}, "curves": {}}
    for path in paths:
        part = json.loads(path.read_text())
        merged.setdefault("config", part["config"])
        merged["loso"].update(part.get("loso", {}))
        for kind, recipes in part.get("curves", {}).items():
            for recipe, sizes in recipes.items():
                for size, values in sizes.items():
                    sizes_out = merged["curves"].setdefault(kind, {}).setdefault(recipe, {})
                    sizes_out.setdefault(int(size), []).extend(values)
    if not merged["curves"]:
        del merged["curves"]
    merged["summary"] = summarise(merged)
    return merged


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.report:
        results = merge(args.report)
        print_report(results)
        print(json.dumps(results["summary"], indent=2, default=str))
        return 0
    root = args.data.resolve()
    if not (root / "SPLITS.csv").is_file() or not (root / "MANIFEST.csv").is_file():
        print(f"error: {root} has no MANIFEST.csv and SPLITS.csv: give the realbench folder", file=sys.stderr)
        return 2
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    rows = read_rows(root)
    sources = args.sources.split(",") if args.sources else eligible_sources(rows)
    if args.quick and not args.sources:
        sources = sorted(sources, key=lambda s: sum(r.source == s for r in rows))[:1]
    skip = set(filter(None, args.skip.split(",")))
    started = time.perf_counter()
    bank = Bank(rows, root, args)
    trainer = Trainer(bank, args)
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    results: dict = {"config": config, "sources": sources}
    args.out.mkdir(parents=True, exist_ok=True)
    if "loso" not in skip:
        results["loso"] = loso(rows, bank, trainer, sources, args)
        results["summary"] = summarise(results)
        save(results, args.out)
    if "curves" not in skip:
        results["curves"] = curves(rows, trainer, args)
    results["summary"] = summarise(results)
    results["seconds"] = {"total": time.perf_counter() - started, "training": trainer.seconds, "runs": trainer.runs}
    save(results, args.out)
    print_report(results)
    seconds = results["seconds"]
    print(f"\n{trainer.runs} training runs, {trainer.seconds:.0f} s training; {seconds['total']:.0f} s in all")
    return 0


def save(results: dict, out: Path) -> None:
    (out / "results.json").write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    sys.exit(main())
