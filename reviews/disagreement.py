"""How much two models disagree about one upload: the sort key of the queue's "most informative
first" ordering. Pure: category scores and thresholds in, a number out (no database).

The routing model (the one whose score routed the upload) and another model that scored the same
upload (a shadow candidate) are compared under the policy that routed it, because that is what a
promotion would change: the policy stays when a model is promoted.

    disagreement = route steps + score gap

- *route steps*: how far apart their routes are under that policy, with approve < queue < reject:
  0 (same route), 1 (one queues what the other decides), 2 (one approves what the other rejects);
- *score gap*: the largest difference between their scores for a category both give (the harmful
  scores when they share none), rounded to ``STEP``, so near-ties fall through to the next sort
  key (uncertainty) instead of being ordered by noise.

The route steps come first because the scales of two models are not calibrated to each other: a
gap of 0.05 may cross a threshold for one model and mean nothing for another. 0 means the two
models agree (or there is nothing to compare); the largest value is 3.
"""

from __future__ import annotations

from moderation.routing import Route, route_scores

STEP = 0.01  # score gaps closer than this are ties
ROUTE_RANK = {Route.APPROVE: 0, Route.QUEUE: 1, Route.REJECT: 2}


def route_steps(first: dict[str, float], second: dict[str, float], thresholds: dict[str, dict[str, float]]) -> int:
    """How many steps apart the two models' routes are under ``thresholds`` (0, 1 or 2)."""
    return abs(ROUTE_RANK[route_scores(first, thresholds).route] - ROUTE_RANK[route_scores(second, thresholds).route])


def score_gap(first: dict[str, float], second: dict[str, float]) -> float:
    """The largest difference in a category both models score; their top scores when none is shared."""
    shared = set(first) & set(second)
    if shared:
        return max(abs(first[name] - second[name]) for name in shared)
    return abs(max(first.values()) - max(second.values()))


def disagreement(routing: dict[str, float], other: dict[str, float], thresholds: dict[str, dict[str, float]]) -> float:
    """Route steps plus the score gap rounded to ``STEP`` (see the module's docstring)."""
    if not routing or not other:
        return 0.0
    gap = round(score_gap(routing, other) / STEP) * STEP
    return round(route_steps(routing, other, thresholds) + gap, 6)
