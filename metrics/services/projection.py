"""What a threshold policy would do to the traffic of a window, and thresholds that meet targets.

Works on roll-up cells (per-category score bins with counts), so a projection over weeks of
traffic costs a few array operations. Thresholds sit on bin edges (``moderation/bins.py``), where
the routing rule applied to bins gives exactly what it gives on the raw scores. The threshold
page's JavaScript (``static/js/thresholds.js``) mirrors :func:`route_cells` and :func:`project`
for live updates; a browser test checks they agree.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from metrics.selectors.traffic import Cell
from moderation.bins import BIN_COUNT, EDGES, TOP, threshold_position

APPROVE, QUEUE, REJECT = 0, 1, 2


@dataclass
class Traffic:
    categories: list[str]
    bins: np.ndarray  # [cells, categories]; -1 where the cell has no score for the category
    scored: np.ndarray
    harmful: np.ndarray  # standing human labels
    safe: np.ndarray
    days: float

    def as_json(self) -> dict:
        return {
            "categories": self.categories,
            "edges": list(EDGES),
            "days": self.days,
            "cells": [
                [row.tolist(), int(n), int(h), int(s)]
                for row, n, h, s in zip(self.bins, self.scored, self.harmful, self.safe, strict=True)
            ],
        }


def traffic_from_cells(cells: list[Cell], *, days: float, categories: list[str] | None = None) -> Traffic:
    names = sorted({name for cell in cells for name in cell.bins} | set(categories or []))
    bins = np.full((len(cells), len(names)), -1, dtype=int)
    for i, cell in enumerate(cells):
        for j, name in enumerate(names):
            bins[i, j] = cell.bins.get(name, -1)
    pick = lambda key: np.asarray([c.counts[key] for c in cells], dtype=np.int64)  # noqa: E731
    return Traffic(names, bins, pick("scored"), pick("labelled_harmful"), pick("labelled_safe"), days)


Positions = dict[str, tuple[int, int]]  # category -> (approve_below edge, reject_from edge)


def positions_from_thresholds(thresholds: dict[str, dict[str, float]]) -> Positions:
    return {
        name: (threshold_position(bounds["approve_below"]), threshold_position(bounds["reject_from"]))
        for name, bounds in thresholds.items()
    }


def thresholds_from_positions(positions: Positions) -> dict[str, dict[str, float]]:
    return {name: {"approve_below": EDGES[a], "reject_from": EDGES[r]} for name, (a, r) in positions.items()}


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


@dataclass
class Projection:
    scored: int
    approved: int
    queued: int
    rejected: int
    queued_per_day: float
    # Standing human labels that fall in each band.
    labelled_harmful: int
    harmful_approved: int
    labelled_safe: int
    safe_rejected: int
    # Estimated errors over all traffic in the automatic bands (None when no labels to go on).
    est_harmful_approved: float | None
    est_safe_rejected: float | None
    harmful_rejected: int = 0
    safe_approved: int = 0

    def share(self, count: int) -> float:
        return count / self.scored if self.scored else 0.0

    @property
    def harmful_recall(self) -> float | None:
        """Share of labelled harmful images kept out of auto-approve."""
        if not self.labelled_harmful:
            return None
        return 1 - self.harmful_approved / self.labelled_harmful

    @property
    def reject_precision(self) -> float | None:
        """Share of labelled images in the auto-reject band that humans call harmful."""
        labelled = self.labelled_rejected
        return (labelled - self.safe_rejected) / labelled if labelled else None

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


def project(traffic: Traffic, positions: Positions) -> Projection:
    routes = route_cells(traffic, positions)
    counted = lambda values, band: int(values[routes == band].sum())  # noqa: E731
    projection = Projection(
        scored=int(traffic.scored.sum()),
        approved=counted(traffic.scored, APPROVE),
        queued=counted(traffic.scored, QUEUE),
        rejected=counted(traffic.scored, REJECT),
        queued_per_day=counted(traffic.scored, QUEUE) / traffic.days if traffic.days else 0.0,
        labelled_harmful=int(traffic.harmful.sum()),
        harmful_approved=counted(traffic.harmful, APPROVE),
        labelled_safe=int(traffic.safe.sum()),
        safe_rejected=counted(traffic.safe, REJECT),
        est_harmful_approved=_estimate(routes, APPROVE, traffic, traffic.harmful),
        est_safe_rejected=_estimate(routes, REJECT, traffic, traffic.safe),
    )
    projection.harmful_rejected = counted(traffic.harmful, REJECT)
    projection.safe_approved = counted(traffic.safe, APPROVE)
    return projection


class NoLabels(Exception):
    """There are no human labels in the window to choose thresholds from."""


def suggest(
    traffic: Traffic, *, start: Positions, min_reject_precision: float, min_harmful_recall: float, rounds: int = 3
) -> Positions:
    """Thresholds meeting the targets on the window's labelled traffic, found one category at a
    time (the others held), a few rounds over:

    - ``reject_from``: the lowest edge at which the whole auto-reject band stays at least
      ``min_reject_precision`` precise (1.0, no auto-reject, when none is);
    - ``approve_below``: the highest edge, not above ``reject_from``, at which at least
      ``min_harmful_recall`` of labelled harmful images stay out of auto-approve.
    """
    if not traffic.harmful.sum():
        raise NoLabels("No human-labelled harmful images in this window to choose thresholds from.")
    positions = {name: start.get(name, (0, TOP)) for name in traffic.categories}
    total_harmful = traffic.harmful.sum()
    for _ in range(rounds):
        for j, name in enumerate(traffic.categories):
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
    return positions


def _suffix(column: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """For each edge k = 0..TOP: the weight of cells with bin >= k (missing bins never)."""
    counts = np.bincount(column[column >= 0], weights=weights[column >= 0], minlength=BIN_COUNT)
    return np.cumsum(counts[::-1])[::-1]


def _prefix(column: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """For each edge k = 0..TOP: the weight of cells with bin < k (missing bins always)."""
    missing = weights[column < 0].sum()
    counts = np.bincount(column[column >= 0], weights=weights[column >= 0], minlength=BIN_COUNT)
    return np.concatenate([[0], np.cumsum(counts)[:-1]]) + missing
