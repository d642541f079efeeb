import random

import numpy as np
import pytest

from metrics.selectors.traffic import Cell
from metrics.services.projection import (
    APPROVE,
    QUEUE,
    REJECT,
    Figure,
    positions_from_thresholds,
    project,
    route_cells,
    share_figure,
    suggest,
    thresholds_from_positions,
    traffic_from_cells,
)
from moderation.bins import EDGES, TOP, cell_key, parse_cell, threshold_position
from moderation.routing import Route, route_scores

CODES = {Route.APPROVE: APPROVE, Route.QUEUE: QUEUE, Route.REJECT: REJECT}


def cell(scores: dict[str, float], scored=1, harmful=0, safe=0, category="weapon") -> Cell:
    """A roll-up cell; its harmful labels name ``category`` ("" for none)."""
    counts = dict.fromkeys(
        ("auto_approved", "auto_rejected", "queued", "audited", "overturned", "peer_compared", "peer_agreed"), 0
    )
    counts.update(scored=scored, labelled_harmful=harmful, labelled_safe=safe)
    by_category = {category: harmful} if harmful and category else {}
    return Cell(bins=parse_cell(cell_key(scores)), counts=counts, harmful_by_category=by_category)


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
    suggestion = suggest(traffic, start=start, min_reject_precision=0.98, min_harmful_recall=0.99, min_labels=30)
    assert (suggestion.moved, suggestion.held) == (["weapon"], {})
    positions = suggestion.positions
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
    start = {"weapon": (40, 120)}
    suggestion = suggest(traffic, start=start, min_reject_precision=0.9, min_harmful_recall=0.9, min_labels=1)
    assert suggestion.positions == start
    assert suggestion.held == {
        "weapon": "weapon: not enough labels — 0 harmful labelled weapon, 0 safe; need 1 of each"
    }


def test_suggest_holds_a_category_whose_labels_name_another_one():
    """Reproduction 4 of the issue: 30 labels, none of them nudity. Weapon-harmful images score
    high on nudity too, which alone made Suggest propose nudity 0.4256 / 0.4256."""
    both = lambda weapon, nudity: {"weapon": weapon, "nudity": nudity}  # noqa: E731
    cells = [cell(both(0.95, 0.43), harmful=15, category="weapon"), cell(both(0.05, 0.01), safe=15)]
    start = positions_from_thresholds(
        {"weapon": {"approve_below": 0.002, "reject_from": 0.4}, "nudity": {"approve_below": 0.2, "reject_from": 0.8}}
    )
    targets = {"min_reject_precision": 0.98, "min_harmful_recall": 0.99}
    few = suggest(traffic_from_cells(cells, days=1), start=start, min_labels=30, **targets)
    assert few.positions == start and few.moved == []
    assert few.held["nudity"] == "nudity: not enough labels — 0 harmful labelled nudity, 15 safe; need 30 of each"
    assert few.held["weapon"] == "weapon: not enough labels — 15 harmful labelled weapon, 15 safe; need 30 of each"
    # With enough nudity labels (and safe ones), nudity gets thresholds; weapon still has too few.
    cells += [cell(both(0.05, 0.97), harmful=30, category="nudity"), cell(both(0.05, 0.3), safe=15)]
    enough = suggest(traffic_from_cells(cells, days=1), start=start, min_labels=30, **targets)
    assert enough.moved == ["nudity"] and list(enough.held) == ["weapon"]
    assert enough.positions["weapon"] == start["weapon"]
    assert enough.positions["nudity"] != start["nudity"]
    current = {
        "weapon": {"approve_below": 0.002, "reject_from": 0.4},
        "nudity": {"approve_below": 0.2, "reject_from": 0.8},
    }
    loaded = enough.thresholds(current)
    assert loaded["weapon"] == current["weapon"]  # held: the exact values, not their edges
    a, r = enough.positions["nudity"]
    assert loaded["nudity"] == {"approve_below": EDGES[a], "reject_from": EDGES[r]}


def test_a_figure_gives_its_wilson_interval_and_the_labels_it_rests_on():
    # Newcombe (1998), Table I, method 3 (Wilson score interval without continuity correction).
    for k, n, low, high in ((81, 263, 0.2553, 0.3662), (15, 148, 0.0624, 0.1605), (0, 20, 0.0, 0.1611)):
        figure = share_figure(k, n, minimum=20)
        assert (round(figure.low, 4), round(figure.high, 4)) == (low, high)
        assert figure.value == k / n and figure.enough
    assert str(share_figure(81, 263, minimum=30)) == "0.3080 (0.255–0.366, n = 263)"
    assert str(share_figure(14, 15, minimum=30)) == "not enough labels (15 of 30)"
    assert str(share_figure(0, 0, minimum=30)) == "not enough labels (0 of 30)"
    # Written as JavaScript's toFixed writes it: 1/32 = 0.03125 exactly, a tie, rounds up.
    assert str(Figure(1, 32, 1, 0.0, 0.5)) == "0.0313 (0.000–0.500, n = 32)"


def test_projection_figures_per_category():
    both = lambda weapon, nudity: {"weapon": weapon, "nudity": nudity}  # noqa: E731
    cells = [
        cell(both(0.9, 0.1), harmful=8, category="weapon"),  # rejected by weapon
        cell(both(0.9, 0.1), harmful=2, category=""),  # harmful, no category: totals only
        cell(both(0.001, 0.5), harmful=4, category="nudity"),  # queued (nudity review band)
        cell(both(0.001, 0.001), harmful=1, safe=30, category="nudity"),  # approved
        cell(both(0.5, 0.9), safe=1),  # rejected by nudity (and weapon): a wrong reject
    ]
    traffic = traffic_from_cells(cells, days=1)
    thresholds = {
        "weapon": {"approve_below": 0.002, "reject_from": 0.4},
        "nudity": {"approve_below": 0.2, "reject_from": 0.8},
    }
    projection = project(traffic, positions_from_thresholds(thresholds), min_labels=5)
    assert (projection.recall.k, projection.recall.n) == (14, 15)
    assert (projection.precision.k, projection.precision.n) == (10, 11)
    by_name = {c.name: c for c in projection.categories}
    nudity, weapon = by_name["nudity"], by_name["weapon"]
    assert (nudity.harmful, nudity.recall.k, nudity.recall.n) == (5, 4, 5)
    assert (nudity.precision.k, nudity.precision.n) == (0, 1) and not nudity.precision.enough
    assert (weapon.harmful, weapon.recall.k, weapon.recall.n) == (8, 8, 8)
    assert (weapon.precision.k, weapon.precision.n) == (10, 11)
    assert str(nudity.precision) == "not enough labels (1 of 5)"


def test_threshold_positions_snap_to_the_nearest_edge():
    assert threshold_position(0.5) == 101 and threshold_position(1.0) == TOP and threshold_position(0) == 0
