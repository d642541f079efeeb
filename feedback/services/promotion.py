"""The promotion rule: when a retrained candidate may replace the active model by itself.

Both models score the same held-out images (the export's ``val`` split, which the candidate never
trained on). The candidate is promoted automatically only if every rule holds; the first that
fails decides, and the verdict carries the numbers and intervals of all of them:

1. ``sample_size`` — at least ``VIGIL_PROMOTION_MIN_HARMFUL`` harmful and
   ``VIGIL_PROMOTION_MIN_SAFE`` safe held-out images (50 each by default): on six images an AUC of
   1.0 says nothing.
2. ``forced`` — a run started "even with few new labels" is never promoted automatically.
3. ``auc`` — the ROC AUC gain over the active model is real: the lower end of its
   ``VIGIL_PROMOTION_CONFIDENCE`` (95 %) interval, from a paired stratified percentile bootstrap
   over the held-out images (``VIGIL_PROMOTION_RESAMPLES`` resamples, seeded), lies above
   ``VIGIL_PROMOTION_AUC_MARGIN`` (0).
4. ``recall`` — routed by the policy in force (promotion never changes it), the candidate keeps at
   least ``VIGIL_PROMOTION_MIN_RECALL`` (0.90) of harmful images out of auto-approve by the lower
   end of a Wilson interval, and auto-approves no more labelled harmful images than the active
   model does on the same images.

5. ``new_misses`` — on every held-out set, routed by the policy in force, the candidate
   auto-approves at most ``VIGIL_PROMOTION_MAX_NEW_MISSES`` (0) labelled harmful images that the
   active model kept from auto-approve (image by image, not only in total).
6. ``forgetting`` — on every *guard* set (the base dataset's held-out split, and any held-out set
   the active model was judged on that this run's data no longer covers), the candidate is not
   worse than the active model: the lower end of the interval of its ROC AUC difference lies above
   ``-VIGIL_PROMOTION_MAX_AUC_LOSS`` (0.02; a non-inferiority test: a candidate must *show* it did
   not forget, so a set too small to show it holds the candidate too). A guard set that is gone or
   unreadable holds it as well.

Otherwise the candidate stays for an admin to shadow, promote or discard.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
from django.conf import settings

SAMPLE_SIZE, FORCED, AUC, RECALL, ALL_MET = "sample_size", "forced", "auc", "recall", "all_met"
NEW_MISSES, FORGETTING = "new_misses", "forgetting"
MIN_PER_CLASS_FOR_INTERVAL = 5


@dataclass(frozen=True)
class HeldOut:
    """Both models on the same held-out images."""

    labels: np.ndarray  # 1 harmful, 0 safe
    candidate: np.ndarray  # harmful scores
    active: np.ndarray
    candidate_approved: np.ndarray  # bool: auto-approved under the policy in force
    active_approved: np.ndarray
    policy_version: int

    @property
    def harmful(self) -> int:
        return int((self.labels == 1).sum())

    @property
    def safe(self) -> int:
        return int((self.labels == 0).sum())

    @property
    def new_misses(self) -> int:
        """Harmful images the candidate auto-approves that the active model kept for a human or rejected."""
        harmful = self.labels == 1
        return int((harmful & self.candidate_approved.astype(bool) & ~self.active_approved.astype(bool)).sum())


@dataclass(frozen=True)
class GuardSet:
    """Another held-out set the candidate must not do worse on: ``heldout`` is None when it could
    not be scored (gone, unreadable), and ``note`` says why."""

    name: str
    heldout: HeldOut | None
    note: str = ""


@dataclass(frozen=True)
class Rules:
    min_harmful: int
    min_safe: int
    confidence: float
    auc_margin: float
    min_recall: float
    resamples: int
    max_auc_loss: float = 0.02
    max_new_misses: int = 0

    @classmethod
    def from_settings(cls) -> Rules:
        return cls(
            min_harmful=settings.VIGIL_PROMOTION_MIN_HARMFUL,
            min_safe=settings.VIGIL_PROMOTION_MIN_SAFE,
            confidence=settings.VIGIL_PROMOTION_CONFIDENCE,
            auc_margin=settings.VIGIL_PROMOTION_AUC_MARGIN,
            min_recall=settings.VIGIL_PROMOTION_MIN_RECALL,
            resamples=settings.VIGIL_PROMOTION_RESAMPLES,
            max_auc_loss=settings.VIGIL_PROMOTION_MAX_AUC_LOSS,
            max_new_misses=settings.VIGIL_PROMOTION_MAX_NEW_MISSES,
        )


@dataclass(frozen=True)
class Verdict:
    promote: bool
    rule: str  # the rule that decided: the first that failed, or ALL_MET
    reasons: list[str]
    figures: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def _auc_rows(labels: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """ROC AUC along the last axis (Mann-Whitney from average ranks; ties count half)."""
    from scipy import stats  # here, not at import: the web path imports this module for Rules

    ranks = stats.rankdata(scores, axis=-1)
    positive = labels == 1
    n1 = positive.sum(axis=-1)
    n0 = labels.shape[-1] - n1
    with np.errstate(divide="ignore", invalid="ignore"):
        return ((ranks * positive).sum(axis=-1) - n1 * (n1 + 1) / 2) / (n1 * n0)


def auc_comparison(heldout: HeldOut, *, confidence: float, resamples: int, seed: int = 0) -> dict:
    """Both AUCs, their difference and its interval (None when too few images).

    The interval is a paired, stratified percentile bootstrap (as pROC does for ROC curves): each
    resample draws the harmful and the safe images separately with replacement, keeping the class
    counts, and scores both models on the same draw. Stratifying means no resample lacks a class,
    so the AUC is always defined, however small the set."""
    labels = heldout.labels.astype(int)
    candidate, active = float(_auc_rows(labels, heldout.candidate)), float(_auc_rows(labels, heldout.active))
    interval = None
    if min(heldout.harmful, heldout.safe) >= MIN_PER_CLASS_FOR_INTERVAL:
        differences = _stratified_differences(heldout, resamples=resamples, seed=seed)
        tail = (1 - confidence) / 2 * 100
        low, high = np.percentile(differences, [tail, 100 - tail])
        interval = [float(low), float(high)]
    return {
        "candidate": candidate,
        "active": active,
        "difference": candidate - active,
        "interval": interval,
        "confidence": confidence,
        "method": f"paired stratified bootstrap (percentile, {resamples} resamples)",
    }


def _stratified_differences(heldout: HeldOut, *, resamples: int, seed: int, chunk: int = 200) -> np.ndarray:
    """AUC(candidate) - AUC(active) on ``resamples`` draws of the held-out images, per class."""
    rng = np.random.default_rng(seed)
    harmful, safe = np.flatnonzero(heldout.labels == 1), np.flatnonzero(heldout.labels != 1)
    labels = np.r_[np.ones(len(harmful), dtype=int), np.zeros(len(safe), dtype=int)]
    out = []
    for start in range(0, resamples, chunk):
        size = min(chunk, resamples - start)
        # [size, n] image indices, the harmful draw first, as ``labels`` says
        rows = np.hstack([rng.choice(harmful, (size, len(harmful))), rng.choice(safe, (size, len(safe)))])
        out.append(_auc_rows(labels, heldout.candidate[rows]) - _auc_rows(labels, heldout.active[rows]))
    return np.concatenate(out)


def recall_figures(labels: np.ndarray, approved: np.ndarray, *, confidence: float) -> dict:
    """Harmful images kept out of auto-approve, with a Wilson interval."""
    harmful = labels == 1
    n = int(harmful.sum())
    kept = int((harmful & ~approved.astype(bool)).sum())
    if not n:
        return {"kept": 0, "of": 0, "value": None, "interval": None}
    from scipy import stats

    ci = stats.binomtest(kept, n).proportion_ci(confidence_level=confidence, method="wilson")
    return {"kept": kept, "of": n, "value": kept / n, "interval": [float(ci.low), float(ci.high)]}


def _fmt_interval(interval: list[float] | None, fmt: str = "+.4f") -> str:
    return "not estimable" if interval is None else f"[{interval[0]:{fmt}}, {interval[1]:{fmt}}]"


def _guard_figures(guard: GuardSet, rules: Rules, seed: int) -> tuple[dict, list[tuple[str, str]]]:
    """One guard set's figures, and the rules it breaks (forgetting, new misses)."""
    if guard.heldout is None:
        figures = {"name": guard.name, "available": False, "note": guard.note}
        return figures, [(FORGETTING, f"{guard.name}: not scored ({guard.note}): forgetting could not be ruled out")]
    data = guard.heldout
    auc = auc_comparison(data, confidence=rules.confidence, resamples=rules.resamples, seed=seed)
    figures = {
        "name": guard.name,
        "available": True,
        "note": guard.note,
        "harmful": data.harmful,
        "safe": data.safe,
        "auc": auc,
        "new_misses": data.new_misses,
        "max_auc_loss": rules.max_auc_loss,
    }
    failed = []
    text = (
        f"{guard.name} ({data.harmful} harmful, {data.safe} safe): ROC AUC {auc['candidate']:.4f} vs active "
        f"{auc['active']:.4f}, difference {auc['difference']:+.4f}, {rules.confidence:.0%} interval "
        f"{_fmt_interval(auc['interval'])}"
    )
    if auc["interval"] is None or not auc["interval"][0] > -rules.max_auc_loss:
        failed.append((FORGETTING, f"{text}: not shown to lose less than {rules.max_auc_loss:g} of AUC"))
    if data.new_misses > rules.max_new_misses:
        failed.append((NEW_MISSES, _new_misses_text(guard.name, data)))
    return figures, failed


def _new_misses_text(name: str, data: HeldOut) -> str:
    return (
        f"{name}: under policy v{data.policy_version} the candidate auto-approves {data.new_misses} labelled harmful "
        "image(s) that the active model kept from auto-approve"
    )


def promotion_verdict(
    heldout: HeldOut, *, forced: bool, rules: Rules | None = None, seed: int = 0, guards: Sequence[GuardSet] = ()
) -> Verdict:
    """``heldout``: this deployment's held-out labels; ``guards``: the other held-out sets (what
    earlier models knew), on which the candidate must show it is not worse."""
    rules = rules or Rules.from_settings()
    pct = f"{rules.confidence:.0%}"
    auc = auc_comparison(heldout, confidence=rules.confidence, resamples=rules.resamples, seed=seed)
    auc["margin"] = rules.auc_margin
    recall = {
        "policy_version": heldout.policy_version,
        "candidate": recall_figures(heldout.labels, heldout.candidate_approved, confidence=rules.confidence),
        "active": recall_figures(heldout.labels, heldout.active_approved, confidence=rules.confidence),
        "minimum": rules.min_recall,
        "method": "Wilson score interval",
    }
    figures = {
        "forced": forced,
        "heldout": {"harmful": heldout.harmful, "safe": heldout.safe},
        "need": {"harmful": rules.min_harmful, "safe": rules.min_safe},
        "auc": auc,
        "recall": recall,
    }
    failed: list[tuple[str, str]] = []
    if heldout.harmful < rules.min_harmful or heldout.safe < rules.min_safe:
        failed.append(
            (
                SAMPLE_SIZE,
                f"held-out set too small ({heldout.harmful} harmful, {heldout.safe} safe; "
                f"need {rules.min_harmful} harmful and {rules.min_safe} safe)",
            )
        )
    if forced:
        failed.append((FORCED, "forced run (started even with few new labels): never promoted automatically"))
    auc_text = (
        f"ROC AUC {auc['candidate']:.4f} vs active {auc['active']:.4f}, difference {auc['difference']:+.4f}, "
        f"{pct} interval {_fmt_interval(auc['interval'])}"
    )
    if auc["interval"] is None or not auc["interval"][0] > rules.auc_margin:
        failed.append((AUC, f"{auc_text}: no gain above {rules.auc_margin:+g} shown"))
    mine, theirs = recall["candidate"], recall["active"]
    recall_text = "no labelled harmful images held out"
    if mine["of"]:
        recall_text = (
            f"harmful recall under policy v{heldout.policy_version} {mine['kept']}/{mine['of']} = {mine['value']:.3f} "
            f"({pct} interval {_fmt_interval(mine['interval'], '.3f')}), active {theirs['kept']}/{theirs['of']}"
        )
    if not mine["of"] or mine["interval"][0] < rules.min_recall:
        failed.append((RECALL, f"{recall_text}: lower bound below {rules.min_recall:g}"))
    elif mine["kept"] < theirs["kept"]:
        failed.append((RECALL, f"{recall_text}: auto-approves more labelled harmful images than the active model"))
    if heldout.new_misses > rules.max_new_misses:
        failed.append((NEW_MISSES, _new_misses_text("held-out labels", heldout)))
    figures["new_misses"] = heldout.new_misses
    figures["guards"] = []
    for guard in guards:
        guard_figures, guard_failed = _guard_figures(guard, rules, seed)
        figures["guards"].append(guard_figures)
        failed.extend(guard_failed)
    if failed:
        return Verdict(False, failed[0][0], [reason for _, reason in failed], figures)
    guarded = "; ".join(
        f"{g['name']}: AUC difference interval {_fmt_interval(g['auc']['interval'])}, no new misses"
        for g in figures["guards"]
    )
    summary = (
        f"all rules met: {heldout.harmful} harmful and {heldout.safe} safe held out; {auc_text} above "
        f"{rules.auc_margin:+g}; {recall_text}, lower bound ≥ {rules.min_recall:g}; no harmful image newly "
        f"auto-approved; {guarded or 'no guard sets (no base dataset configured)'}"
    )
    return Verdict(True, ALL_MET, [summary], figures)
