"""The disagreement between the routing model and a shadow model (pure: no database)."""

import pytest

from reviews.disagreement import disagreement, route_steps, score_gap

BAND = {
    "weapon": {"approve_below": 0.2, "reject_from": 0.8},
    "nudity": {"approve_below": 0.2, "reject_from": 0.8},
}


def scores(weapon: float, nudity: float = 0.0) -> dict[str, float]:
    return {"weapon": weapon, "nudity": nudity}


@pytest.mark.parametrize(
    ("routing", "other", "expected"),
    [
        (scores(0.5), scores(0.6), 0.1),  # both queue: the score gap alone
        (scores(0.5), scores(0.9), 1.4),  # queue against reject: one step, plus the gap
        (scores(0.5), scores(0.1), 1.4),  # queue against approve
        (scores(0.1), scores(0.9), 2.8),  # approve against reject: two steps
        (scores(0.9), scores(0.1), 2.8),  # the same, either way round
        (scores(0.5, nudity=0.1), scores(0.5, nudity=0.45), 0.35),  # the largest gap of any category
        (scores(0.5), scores(0.503), 0.0),  # closer than a step: a tie, left to the next key
        (scores(0.5), scores(0.5), 0.0),
    ],
)
def test_route_steps_come_first_then_the_largest_score_gap(routing, other, expected):
    assert disagreement(routing, other, BAND) == pytest.approx(expected)


def test_one_step_of_route_outranks_any_gap_within_the_band():
    """Within the band a gap is below 0.6; one step of route is worth more than any of them."""
    crossing = disagreement(scores(0.75), scores(0.81), BAND)  # a small gap that crosses reject_from
    within = disagreement(scores(0.21), scores(0.79), BAND)  # the widest gap that stays queued
    assert route_steps(scores(0.75), scores(0.81), BAND) == 1 and crossing == pytest.approx(1.06)
    assert within == pytest.approx(0.58)
    assert within < crossing


def test_models_without_a_shared_category_compare_their_top_scores():
    assert score_gap({"weapon": 0.5}, {"gore": 0.2}) == pytest.approx(0.3)
    # A category the policy does not know is never auto-approved: both queue here.
    assert disagreement({"weapon": 0.5}, {"gore": 0.2}, BAND) == pytest.approx(0.3)


def test_nothing_to_compare_is_no_disagreement():
    assert disagreement({}, scores(0.9), BAND) == 0.0
    assert disagreement(scores(0.9), {}, BAND) == 0.0
