"""Score bins: the resolution at which traffic is rolled up for metrics and threshold projection.

A score in [0, 1] falls in one of ``BIN_COUNT`` bins: 200 spaced evenly in logit space (steps of
0.1 between logit -10 and 10), an underflow bin below, an overflow bin above, and a bin for a
score of exactly 1.0 (a saturated sigmoid gives it, and a ``reject_from`` of 1.0 must catch it).
Logit spacing gives fine steps where thresholds live (0.002, 0.98) and coarse ones in the
middle. A threshold set on a bin edge splits the bins exactly: ``score >= edge(k)`` if and only
if ``score_bin(score) >= k``, which makes projections from rolled-up counts exact for thresholds
on edges.

Pure functions, no Django: the web, the worker and the JavaScript of the threshold page agree.
"""

from __future__ import annotations

import math

LOGIT_MIN = -10.0
LOGIT_STEP = 0.1
STEPS = 200  # interior bins
BIN_COUNT = STEPS + 3  # with underflow (0), overflow (STEPS + 1) and exactly-1.0 (STEPS + 2) bins
TOP = BIN_COUNT - 1  # the position (and bin) of a threshold (score) of 1.0
# Threshold positions 0 .. TOP: position k is the threshold edge(k); 0 is 0.0, TOP is 1.0.
EDGE_COUNT = BIN_COUNT


def _sigmoid(logit: float) -> float:
    return 1.0 / (1.0 + math.exp(-logit))


def edge(k: int) -> float:
    """The score at which bin ``k`` starts (k = 0 .. TOP)."""
    if k <= 0:
        return 0.0
    if k >= TOP:
        return 1.0
    return _sigmoid(LOGIT_MIN + (k - 1) * LOGIT_STEP)


EDGES: tuple[float, ...] = tuple(edge(k) for k in range(EDGE_COUNT))


def score_bin(score: float) -> int:
    """The bin of ``score``: the largest k with ``edge(k) <= score``."""
    if score < EDGES[1]:
        return 0
    if score >= 1.0:
        return TOP
    if score >= EDGES[TOP - 1]:
        return TOP - 1
    logit = math.log(score / (1.0 - score))
    k = math.floor((logit - LOGIT_MIN) / LOGIT_STEP) + 1
    # Correct the floating-point edge cases so the defining property holds exactly.
    while k < TOP - 1 and EDGES[k + 1] <= score:
        k += 1
    while k > 0 and EDGES[k] > score:
        k -= 1
    return k


def threshold_position(threshold: float) -> int:
    """The edge nearest to ``threshold``: a slider position, 0 .. TOP."""
    if threshold >= 1.0:
        return TOP
    if threshold <= 0.0:
        return 0
    k = score_bin(threshold)
    following = k + 1
    if following <= TOP and abs(EDGES[following] - threshold) < abs(EDGES[k] - threshold):
        return following
    return k


def cell_key(category_scores: dict[str, float]) -> str:
    """A canonical key of the per-category bins, e.g. ``nudity=12|weapon=87``."""
    return "|".join(f"{name}={score_bin(float(value))}" for name, value in sorted(category_scores.items()))


def parse_cell(key: str) -> dict[str, int]:
    if not key:
        return {}
    return {name: int(b) for name, b in (part.split("=", 1) for part in key.split("|"))}
