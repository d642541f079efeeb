import pytest

from moderation.routing import Route, route_scores

POLICY = {
    "weapon": {"approve_below": 0.005, "reject_from": 0.5},
    "nudity": {"approve_below": 0.2, "reject_from": 0.8},
}


@pytest.mark.parametrize(
    ("scores", "expected"),
    [
        ({"weapon": 0.001, "nudity": 0.1}, Route.APPROVE),
        ({"weapon": 0.004999, "nudity": 0.199}, Route.APPROVE),
        ({"weapon": 0.005, "nudity": 0.1}, Route.QUEUE),  # approve_below is exclusive
        ({"weapon": 0.001, "nudity": 0.5}, Route.QUEUE),
        ({"weapon": 0.5, "nudity": 0.0}, Route.REJECT),  # reject_from is inclusive
        ({"weapon": 0.001, "nudity": 0.95}, Route.REJECT),  # any category reaching reject_from rejects
        ({"weapon": 0.9, "nudity": 0.9}, Route.REJECT),
    ],
)
def test_route_scores(scores, expected):
    assert route_scores(scores, POLICY).route is expected


def test_reject_reason_names_the_strongest_category():
    outcome = route_scores({"weapon": 0.6, "nudity": 0.95}, POLICY)
    assert outcome.route is Route.REJECT
    assert outcome.reason.startswith("nudity 0.950")


def test_category_without_thresholds_is_never_auto_approved():
    outcome = route_scores({"weapon": 0.0, "violence": 0.0}, POLICY)
    assert outcome.route is Route.QUEUE
    assert "violence" in outcome.reason


def test_category_without_thresholds_does_not_block_a_reject():
    assert route_scores({"weapon": 0.7, "violence": 0.0}, POLICY).route is Route.REJECT


def test_empty_scores_go_to_humans():
    assert route_scores({}, POLICY).route is Route.QUEUE
