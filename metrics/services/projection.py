"""What a threshold policy would do to the traffic of a window, and thresholds that meet targets.

Works on roll-up cells (per-category score bins with counts), so a projection over weeks of
traffic costs a few array operations. Projections place thresholds on bin edges
(``moderation/bins.py``), where the routing rule applied to bins gives exactly what it gives on
the raw scores; a policy's exact values are projected at their nearest edges. Figures measured on
human labels come with the number of labels they rest on and a Wilson interval, and below
``VIGIL_THRESHOLD_MIN_LABELS`` labels they are not given as numbers. The threshold page's
JavaScript (``static/js/thresholds.js``) mirrors :func:`route_cells`, :func:`project` and
:class:`Figure` for live updates; a browser test checks they agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
from django.conf import settings

from metrics.selectors.traffic import Cell
from moderation.bins import BIN_COUNT, EDGES, TOP, threshold_position

APPROVE, QUEUE, REJECT = 0, 1, 2
CONFIDENCE = 0.95  # of the Wilson intervals

Thresholds = dict[str, dict[str, float]]  # category -> {"approve_below": a, "reject_from": r}


@dataclass
class Traffic:
    categories: list[str]
    bins: np.ndarray  # [cells, categories]; -1 where the cell has no score for the category
    scored: np.ndarray
    harmful: np.ndarray  # standing human labels
    safe: np.ndarray
    harmful_by: np.ndarray  # [cells, categories]: harmful labels naming the category
    days: float

    def as_json(self, *, min_labels: int) -> dict:
        """What the page's script projects from: cells as [bins, scored, harmful, safe] and, where
        harmful labels name categories, [harmful per category]; the bin edges; and the evidence
        rules (minimum labels, the Wilson interval's z)."""
        from scipy.special import ndtri  # heavy: loaded by the threshold page, not by every web process

        rows = zip(
            self.bins.tolist(),
            self.scored.tolist(),
            self.harmful.tolist(),
            self.safe.tolist(),
            self.harmful_by.tolist(),
            strict=True,
        )
        return {
            "categories": self.categories,
            "edges": list(EDGES),
            "days": self.days,
            "min_labels": min_labels,
            "z": float(ndtri(0.5 + 0.5 * CONFIDENCE)),
            "cells": [[bins, n, h, s, *([by] if any(by) else [])] for bins, n, h, s, by in rows],
        }


def traffic_from_cells(cells: list[Cell], *, days: float, categories: list[str] | None = None) -> Traffic:
    names = sorted({name for cell in cells for name in cell.bins} | set(categories or []))
    column = {name: j for j, name in enumerate(names)}
    bins = np.full((len(cells), len(names)), -1, dtype=int)
    harmful_by = np.zeros((len(cells), len(names)), dtype=np.int64)
    for i, cell in enumerate(cells):
        for name, b in cell.bins.items():
            bins[i, column[name]] = b
        for name, count in cell.harmful_by_category.items():
            if name in column:  # a category the model does not score counts in the totals only
                harmful_by[i, column[name]] = count
    pick = lambda key: np.asarray([c.counts[key] for c in cells], dtype=np.int64)  # noqa: E731
    return Traffic(names, bins, pick("scored"), pick("labelled_harmful"), pick("labelled_safe"), harmful_by, days)


Positions = dict[str, tuple[int, int]]  # category -> (approve_below edge, reject_from edge)


def positions_from_thresholds(thresholds: Thresholds) -> Positions:
    return {
        name: (threshold_position(bounds["approve_below"]), threshold_position(bounds["reject_from"]))
        for name, bounds in thresholds.items()
    }


def thresholds_from_positions(positions: Positions) -> Thresholds:
    return {name: {"approve_below": EDGES[a], "reject_from": EDGES[r]} for name, (a, r) in positions.items()}


def thresholds_for(thresholds: Thresholds, categories: list[str]) -> Thresholds:
    """A policy's exact thresholds for each category of the page; a category it does not know
    starts at 0.0 / 1.0, which routes as routing treats an unknown category: never auto-approved,
    auto-rejected only at a score of 1.0."""
    return {name: dict(thresholds.get(name, {"approve_below": 0.0, "reject_from": 1.0})) for name in categories}


def _min_labels(min_labels: int | None) -> int:
    return settings.VIGIL_THRESHOLD_MIN_LABELS if min_labels is None else min_labels


def _fixed(value: float, digits: int) -> str:
    """``value`` with ``digits`` decimals as JavaScript's ``toFixed`` writes it (the exact binary
    value, ties upwards), so the page reads the same before and after its script runs."""
    return str(Decimal(value).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP))


@dataclass(frozen=True)
class Figure:
    """A share measured on human labels: ``k`` of ``n``, with its Wilson interval. Below
    ``minimum`` labels the page gives no number, only how many labels there are."""

    k: int
    n: int
    minimum: int
    low: float = 0.0
    high: float = 1.0

    @property
    def enough(self) -> bool:
        return self.n > 0 and self.n >= self.minimum

    @property
    def value(self) -> float | None:
        return self.k / self.n if self.n else None

    def __str__(self) -> str:
        """The page's text; ``figureText`` in static/js/thresholds.js writes the same."""
        if not self.enough:
            return f"not enough labels ({self.n} of {self.minimum})"
        return f"{_fixed(self.k / self.n, 4)} ({_fixed(self.low, 3)}–{_fixed(self.high, 3)}, n = {self.n})"


def share_figure(k: int, n: int, *, minimum: int) -> Figure:
    """``k`` of ``n`` labels with the Wilson score interval at ``CONFIDENCE`` (scipy)."""
    if not n:
        return Figure(k, n, minimum)
    from scipy.stats import binomtest  # heavy: loaded by the threshold page, not by every web process

    interval = binomtest(k, n).proportion_ci(confidence_level=CONFIDENCE, method="wilson")
    return Figure(k, n, minimum, float(interval.low), float(interval.high))


def route_cells(traffic: Traffic, positions: Positions) -> np.ndarray:
    """The routing rule (moderation/routing.py) on bins: reject if any category reaches its
    reject_from; approve if every scored category has thresholds and is below approve_below."""
    n = len(traffic.scored)
    reject = np.zeros(n, dtype=bool)
    approve = np.ones(n, dtype=bool)
    for j, name in enumerate(traffic.categories):
        column = traffic.bins[:, j]
        present = column >= 0
        if name not in positions:
            approve &= ~present  # a category without thresholds is never auto-approved
            continue
        a, r = positions[name]
        reject |= present & (column >= r)
        approve &= ~present | (column < a)
    return np.where(reject, REJECT, np.where(approve, APPROVE, QUEUE))


@dataclass(frozen=True)
class CategoryFigures:
    """What one category's thresholds rest on. Harmful labels count for the category the
    moderator gave; safe labels are safe for every category."""

    name: str
    harmful: int  # standing harmful labels naming this category
    recall: Figure  # of those, the share the whole policy keeps out of auto-approve
    precision: Figure  # labelled images this category's reject_from auto-rejects: the share harmful


@dataclass(frozen=True)
class Projection:
    scored: int
    approved: int
    queued: int
    rejected: int
    queued_per_day: float
    # Standing human labels that fall in each band.
    labelled_harmful: int
    harmful_approved: int
    harmful_rejected: int
    labelled_safe: int
    safe_approved: int
    safe_rejected: int
    # Estimated errors over all traffic in the automatic bands (None when no labels to go on).
    est_harmful_approved: float | None
    est_safe_rejected: float | None
    # The labelled figures with their evidence: the whole policy, then each category.
    recall: Figure
    precision: Figure
    categories: list[CategoryFigures]

    def share(self, count: int) -> float:
        return count / self.scored if self.scored else 0.0

    @property
    def harmful_recall(self) -> float | None:
        """Share of labelled harmful images kept out of auto-approve."""
        return self.recall.value

    @property
    def reject_precision(self) -> float | None:
        """Share of labelled images in the auto-reject band that humans call harmful."""
        return self.precision.value

    @property
    def labelled_rejected(self) -> int:
        return self.harmful_rejected + self.safe_rejected

    def operating_points(self) -> list[tuple[float, float, str]]:
        """Where the policy sits on the ROC curve of the labelled data: the auto-reject band, and
        everything not auto-approved (review band plus auto-reject)."""
        if not (self.labelled_harmful and self.labelled_safe):
            return []
        h, s = self.labelled_harmful, self.labelled_safe
        return [
            (self.safe_rejected / s, self.harmful_rejected / h, "auto-reject band"),
            (1 - self.safe_approved / s, 1 - self.harmful_approved / h, "not auto-approved"),
        ]


def _estimate(routes, band, traffic, wrong) -> float | None:
    """Wrong decisions expected in one automatic band: each cell's scored count times its own
    labelled error rate, or the band's pooled rate where the cell has no labels."""
    inside = routes == band
    labelled = traffic.harmful + traffic.safe
    pooled_n = labelled[inside].sum()
    if not pooled_n:
        return None
    pooled = wrong[inside].sum() / pooled_n
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(labelled > 0, wrong / np.maximum(labelled, 1), pooled)
    return float((traffic.scored * rate)[inside].sum())


def _category_figures(
    traffic: Traffic, routes: np.ndarray, positions: Positions, minimum: int
) -> list[CategoryFigures]:
    result = []
    for j, name in enumerate(traffic.categories):
        named, column = traffic.harmful_by[:, j], traffic.bins[:, j]
        reject_from = positions[name][1] if name in positions else TOP + 1  # no thresholds: rejects nothing
        band = (column >= 0) & (column >= reject_from)  # what this category sends to auto-reject
        band_harmful, band_safe = int(traffic.harmful[band].sum()), int(traffic.safe[band].sum())
        result.append(
            CategoryFigures(
                name=name,
                harmful=int(named.sum()),
                recall=share_figure(int(named[routes != APPROVE].sum()), int(named.sum()), minimum=minimum),
                precision=share_figure(band_harmful, band_harmful + band_safe, minimum=minimum),
            )
        )
    return result


def project(traffic: Traffic, positions: Positions, *, min_labels: int | None = None) -> Projection:
    """What ``positions`` would have done to the window's traffic. Figures resting on fewer than
    ``min_labels`` labels (default ``VIGIL_THRESHOLD_MIN_LABELS``) are marked as such."""
    minimum = _min_labels(min_labels)
    routes = route_cells(traffic, positions)
    counted = lambda values, band: int(values[routes == band].sum())  # noqa: E731
    labelled_harmful, labelled_safe = int(traffic.harmful.sum()), int(traffic.safe.sum())
    harmful_approved, harmful_rejected = counted(traffic.harmful, APPROVE), counted(traffic.harmful, REJECT)
    safe_rejected = counted(traffic.safe, REJECT)
    return Projection(
        scored=int(traffic.scored.sum()),
        approved=counted(traffic.scored, APPROVE),
        queued=counted(traffic.scored, QUEUE),
        rejected=counted(traffic.scored, REJECT),
        queued_per_day=counted(traffic.scored, QUEUE) / traffic.days if traffic.days else 0.0,
        labelled_harmful=labelled_harmful,
        harmful_approved=harmful_approved,
        harmful_rejected=harmful_rejected,
        labelled_safe=labelled_safe,
        safe_approved=counted(traffic.safe, APPROVE),
        safe_rejected=safe_rejected,
        est_harmful_approved=_estimate(routes, APPROVE, traffic, traffic.harmful),
        est_safe_rejected=_estimate(routes, REJECT, traffic, traffic.safe),
        recall=share_figure(labelled_harmful - harmful_approved, labelled_harmful, minimum=minimum),
        precision=share_figure(harmful_rejected, harmful_rejected + safe_rejected, minimum=minimum),
        categories=_category_figures(traffic, routes, positions, minimum),
    )


def evidence_shortfall(traffic: Traffic, name: str, *, minimum: int) -> str | None:
    """Why the window's labels are too few to choose ``name``'s thresholds from, or None: Suggest
    needs ``minimum`` harmful labels naming the category and ``minimum`` safe labels."""
    harmful = int(traffic.harmful_by[:, traffic.categories.index(name)].sum())
    safe = int(traffic.safe.sum())
    if harmful >= minimum and safe >= minimum:
        return None
    return f"{name}: not enough labels — {harmful} harmful labelled {name}, {safe} safe; need {minimum} of each"


@dataclass(frozen=True)
class Suggestion:
    positions: Positions  # every category: the suggested edges, or where it started if held
    held: dict[str, str]  # category -> why it was left at its current thresholds

    @property
    def moved(self) -> list[str]:
        """The categories Suggest chose thresholds for."""
        return [name for name in self.positions if name not in self.held]

    def thresholds(self, current: Thresholds) -> Thresholds:
        """The suggested edges, and ``current``'s exact values for the categories held."""
        return {**current, **thresholds_from_positions({name: self.positions[name] for name in self.moved})}


def suggest(
    traffic: Traffic,
    *,
    start: Positions,
    min_reject_precision: float,
    min_harmful_recall: float,
    min_labels: int | None = None,
    rounds: int = 3,
) -> Suggestion:
    """Thresholds meeting the targets on the window's labelled traffic, found one category at a
    time (the others held), a few rounds over:

    - ``reject_from``: the lowest edge at which the whole auto-reject band stays at least
      ``min_reject_precision`` precise (1.0, no auto-reject, when none is);
    - ``approve_below``: the highest edge, not above ``reject_from``, at which at least
      ``min_harmful_recall`` of labelled harmful images stay out of auto-approve.

    A category with too few labels (:func:`evidence_shortfall`; ``min_labels`` defaults to
    ``VIGIL_THRESHOLD_MIN_LABELS``) stays at its ``start`` position and is reported in ``held``.
    """
    minimum = _min_labels(min_labels)
    positions = {name: start.get(name, (0, TOP)) for name in traffic.categories}
    held = {name: why for name in traffic.categories if (why := evidence_shortfall(traffic, name, minimum=minimum))}
    total_harmful = traffic.harmful.sum()
    for _ in range(rounds):
        for j, name in enumerate(traffic.categories):
            if name in held:
                continue
            column = traffic.bins[:, j]
            others = {k: v for k, v in positions.items() if k != name}
            # Reject: cells the other categories already reject stay rejected at every edge here.
            base = route_cells(traffic, {**others, name: (0, TOP + 1)}) == REJECT
            rejected_h = traffic.harmful[base].sum() + _suffix(column[~base], traffic.harmful[~base])
            rejected_s = traffic.safe[base].sum() + _suffix(column[~base], traffic.safe[~base])
            labelled = rejected_h + rejected_s
            with np.errstate(divide="ignore", invalid="ignore"):
                precise = (labelled > 0) & (rejected_h / np.maximum(labelled, 1) >= min_reject_precision)
            ok = np.nonzero(precise[: TOP + 1])[0]
            reject_from = int(ok[0]) if len(ok) else TOP
            # Approve: only cells no category rejects and the others would approve can move.
            routes = route_cells(traffic, {**others, name: (TOP + 1, reject_from)})
            movable = routes == APPROVE
            approved_h = _prefix(column[movable], traffic.harmful[movable])
            recall = 1 - approved_h / total_harmful
            fine = np.nonzero(recall[: reject_from + 1] >= min_harmful_recall)[0]
            approve_below = int(fine[-1]) if len(fine) else 0
            positions[name] = (approve_below, reject_from)
    return Suggestion(positions=positions, held=held)


def _suffix(column: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """For each edge k = 0..TOP: the weight of cells with bin >= k (missing bins never)."""
    counts = np.bincount(column[column >= 0], weights=weights[column >= 0], minlength=BIN_COUNT)
    return np.cumsum(counts[::-1])[::-1]


def _prefix(column: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """For each edge k = 0..TOP: the weight of cells with bin < k (missing bins always)."""
    missing = weights[column < 0].sum()
    counts = np.bincount(column[column >= 0], weights=weights[column >= 0], minlength=BIN_COUNT)
    return np.concatenate([[0], np.cumsum(counts)[:-1]]) + missing
