import random

import numpy as np
import pytest

from metrics.selectors.traffic import Cell
from metrics.services.projection import (
    APPROVE,
    QUEUE,
    REJECT,
    NoLabels,
    positions_from_thresholds,
    project,
    route_cells,
    suggest,
    thresholds_from_positions,
    traffic_from_cells,
)
from moderation.bins import TOP, cell_key, parse_cell, threshold_position
from moderation.routing import Route, route_scores

CODES = {Route.APPROVE: APPROVE, Route.QUEUE: QUEUE, Route.REJECT: REJECT}


def cell(scores: dict[str, float], scored=1, harmful=0, safe=0) -> Cell:
    counts = dict.fromkeys(
        ("auto_approved", "auto_rejected", "queued", "audited", "overturned", "peer_compared", "peer_agreed"), 0
    )
    counts.update(scored=scored, labelled_harmful=harmful, labelled_safe=safe)
    return Cell(bins=parse_cell(cell_key(scores)), counts=counts)


def test_routing_on_bins_matches_the_routing_rule_on_scores_for_thresholds_on_edges():
    rng = random.Random(7)
    for _ in range(300):
        positions = {}
        for name in ("weapon", "nudity"):
            a = rng.randrange(0, TOP + 1)
            positions[name] = (a, rng.randrange(a, TOP + 1))
        if rng.random() < 0.2:
            positions.pop("nudity")
        thresholds = thresholds_from_positions(positions)
        assert positions_from_thresholds(thresholds) == positions
        samples = []
        for _ in range(40):
            scores = {
                "weapon": rng.choice([0.0, 1.0]) if rng.random() < 0.05 else rng.random() ** rng.choice([1, 3, 9])
            }
            if rng.random() < 0.8:
                scores["nudity"] = 1.0 if rng.random() < 0.05 else 1 - rng.random() ** rng.choice([1, 3, 9])
            samples.append(scores)
        traffic = traffic_from_cells([cell(s) for s in samples], days=1)
        expected = [CODES[route_scores(s, thresholds).route] for s in samples]
        assert route_cells(traffic, positions).tolist() == expected


def test_projection_counts_bands_volumes_and_estimated_errors():
    cells = [
        cell({"weapon": 0.0001}, scored=900, harmful=1, safe=49),  # auto-approved; 2 % harmful among labelled
        cell({"weapon": 0.0005}, scored=100),  # approved, unlabelled: pooled band rate 1/50
        cell({"weapon": 0.2}, scored=80, harmful=10, safe=30),  # review band
        cell({"weapon": 0.9}, scored=20, harmful=19, safe=1),  # auto-rejected
    ]
    traffic = traffic_from_cells(cells, days=2)
    projection = project(traffic, positions_from_thresholds({"weapon": {"approve_below": 0.002, "reject_from": 0.4}}))
    assert (projection.scored, projection.approved, projection.queued, projection.rejected) == (1100, 1000, 80, 20)
    assert projection.queued_per_day == 40
    assert (projection.harmful_approved, projection.labelled_harmful) == (1, 30)
    assert projection.harmful_recall == pytest.approx(29 / 30)
    assert projection.reject_precision == pytest.approx(19 / 20)
    assert projection.est_harmful_approved == pytest.approx(900 * 1 / 50 + 100 * 1 / 50)
    assert projection.est_safe_rejected == pytest.approx(20 * 1 / 20)


def test_suggest_meets_the_targets_on_labelled_traffic():
    rng = np.random.default_rng(3)
    cells = []
    for _ in range(400):
        harmful = rng.random() < 0.3
        score = float(np.clip(rng.beta(5, 2) if harmful else rng.beta(1.2, 8), 1e-6, 1 - 1e-6))
        cells.append(cell({"weapon": score}, scored=3, harmful=int(harmful), safe=int(not harmful)))
    traffic = traffic_from_cells(cells, days=7)
    start = positions_from_thresholds({"weapon": {"approve_below": 0.5, "reject_from": 0.5}})
    positions = suggest(traffic, start=start, min_reject_precision=0.98, min_harmful_recall=0.99)
    projection = project(traffic, positions)
    assert projection.harmful_recall >= 0.99
    assert projection.reject_precision is None or projection.reject_precision >= 0.98
    a, r = positions["weapon"]
    assert a <= r
    # The edges are the tightest that meet the targets: one step further breaks each.
    assert project(traffic, {"weapon": (a + 1, max(r, a + 1))}).harmful_recall < 0.99
    if r > 0:
        looser = project(traffic, {"weapon": (min(a, r - 1), r - 1)})
        assert looser.reject_precision < 0.98 or looser.rejected == projection.rejected


def test_suggest_needs_labels():
    traffic = traffic_from_cells([cell({"weapon": 0.3}, scored=5)], days=1)
    with pytest.raises(NoLabels):
        suggest(traffic, start={}, min_reject_precision=0.9, min_harmful_recall=0.9)


def test_threshold_positions_snap_to_the_nearest_edge():
    assert threshold_position(0.5) == 101 and threshold_position(1.0) == TOP and threshold_position(0) == 0
