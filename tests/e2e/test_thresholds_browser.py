"""The threshold page in a real browser: the live projection (JavaScript) agrees with the server's
(Python) for the positions the admin moves the sliders to, figures and their evidence included;
the numbers hold the exact thresholds, a slider rewrites only its own number, and saving keeps
every number the admin did not touch exactly as it was."""

from __future__ import annotations

import pytest

from accounts.roles import Role
from metrics.selectors.traffic import traffic_cells
from metrics.selectors.windows import window_named
from metrics.services.projection import positions_from_thresholds, project, traffic_from_cells
from moderation.bins import EDGES, TOP, threshold_position
from moderation.services.model_versions import model_version_ensure_active
from moderation.services.policies import policy_create, policy_current
from tests.e2e.browser import chromium_page
from tests.e2e.test_review_browser import browser_ready, screenshot_dir, sign_in_with_keyboard  # noqa: F401
from tests.factories import make_user
from tests.metrics.helpers import labelled, labelled_scores

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

# Not bin edges: the page must keep them as they are.
ROUND = {"weapon": {"approve_below": 0.2, "reject_from": 0.4}, "nudity": {"approve_below": 0.2, "reject_from": 0.8}}
FIGURES = ["recall", "precision", "recall:weapon", "precision:weapon", "recall:nudity", "precision:nudity"]


def number(page, category: str, kind: str):
    return page.locator(f"tr[data-category={category}] input[data-exact={kind}]")


def slider(page, category: str, kind: str):
    return page.locator(f"tr[data-category={category}] input[data-kind={kind}]")


def numbers(page) -> dict[str, str]:
    return {
        f"{bound}__{name}": number(page, name, bound.split("_")[0]).input_value()
        for name in ("weapon", "nudity")
        for bound in ("approve_below", "reject_from")
    }


def save(page, reason: str) -> None:
    page.locator("textarea[name=reason]").fill(reason)
    with page.expect_navigation():
        page.locator("#policy-form button[type=submit]").click()
    assert "Saved policy" in page.content()


def test_sliders_update_the_projection_like_the_server_computes_it(live_server, settings):
    settings.VIGIL_THRESHOLD_MIN_LABELS = 2  # so that per-category figures show numbers to compare
    make_user(Role.ADMIN, username="boss")
    moderator = make_user(Role.MODERATOR)
    for score, label in [(0.001, "safe")] * 6 + [(0.01, "harmful"), (0.2, "safe"), (0.3, "harmful"), (0.7, "harmful")]:
        labelled(moderator, score, label, "weapon" if label == "harmful" else "")
    for nudity in (0.5, 0.9, 0.95):
        labelled_scores(moderator, {"weapon": 0.001, "nudity": nudity}, "harmful", "nudity")
    labelled_scores(moderator, {"weapon": 0.001, "nudity": 0.85}, "safe")
    policy = policy_current()
    with chromium_page(live_server.url) as page:
        sign_in_with_keyboard(page, "boss")
        page.goto("/insights/thresholds/?window=24h")
        approve, reject = slider(page, "weapon", "approve"), slider(page, "weapon", "reject")
        start = int(approve.input_value())
        approve.focus()
        for _ in range(25):
            page.keyboard.press("ArrowRight")  # approve_below moves up 25 bins
        reject.focus()
        for _ in range(10):
            page.keyboard.press("ArrowLeft")
        a, r = int(approve.input_value()), int(reject.input_value())
        assert a == start + 25
        outputs = ["approved", "queued", "rejected", "harmful-approved", *FIGURES]
        shown = {name: page.locator(f'[data-out="{name}"]').inner_text() for name in outputs}
        page.screenshot(path=str(screenshot_dir() / "thresholds.png"), full_page=True)
        save(page, "wider auto-approve, measured on the last day")
    positions = {"weapon": (a, r), "nudity": positions_from_thresholds(policy.thresholds)["nudity"]}
    cells = traffic_cells(model_version=model_version_ensure_active(), window=window_named("24h"))
    expected = project(traffic_from_cells(cells, days=1, categories=["nudity", "weapon"]), positions)
    by_name = {c.name: c for c in expected.categories}
    assert shown == {
        "approved": str(expected.approved),
        "queued": str(expected.queued),
        "rejected": str(expected.rejected),
        "harmful-approved": str(expected.harmful_approved),
        "recall": str(expected.recall),
        "precision": str(expected.precision),
        **{
            f"{figure}:{name}": str(getattr(by_name[name], figure))
            for name in by_name
            for figure in ("recall", "precision")
        },
    }
    assert expected.approved > 6  # the move changed something
    assert by_name["nudity"].recall.enough and by_name["weapon"].precision.enough  # numbers were compared
    saved = policy_current()
    assert saved.version == policy.version + 1
    assert saved.thresholds["weapon"] == {"approve_below": EDGES[a], "reject_from": EDGES[r]}
    assert saved.thresholds["nudity"] == policy.thresholds["nudity"]


def test_moving_one_slider_changes_exactly_that_number(live_server):
    make_user(Role.ADMIN, username="boss")
    before = policy_create(thresholds=ROUND, reason="round numbers").thresholds
    with chromium_page(live_server.url) as page:
        sign_in_with_keyboard(page, "boss")
        page.goto("/insights/thresholds/")
        loaded = numbers(page)
        positions = {name: int(slider(page, name.split("__")[1], name.split("_")[0]).input_value()) for name in loaded}
        moved = slider(page, "weapon", "approve")
        moved.focus()
        for _ in range(3):
            page.keyboard.press("ArrowRight")
        position = int(moved.input_value())
        after_move = numbers(page)
        save(page, "a little more auto-approve for weapons")
    assert loaded == {f"{b}__{n}": repr(v) for n, bounds in ROUND.items() for b, v in bounds.items()}
    assert positions == {f"{b}__{n}": threshold_position(v) for n, bounds in ROUND.items() for b, v in bounds.items()}
    assert position == threshold_position(0.2) + 3
    assert float(after_move.pop("approve_below__weapon")) == EDGES[position]
    assert after_move == {name: value for name, value in loaded.items() if name != "approve_below__weapon"}
    saved = policy_current().thresholds
    changed = [(n, b) for n in ROUND for b in ROUND[n] if saved[n][b] != before[n][b]]
    assert changed == [("weapon", "approve_below")]
    assert saved["weapon"]["approve_below"] == EDGES[position]
    assert saved["weapon"]["reject_from"] == before["weapon"]["reject_from"] == 0.4
    assert saved["nudity"] == before["nudity"] == {"approve_below": 0.2, "reject_from": 0.8}


def test_a_typed_number_moves_its_slider_and_is_saved_as_typed(live_server):
    make_user(Role.ADMIN, username="boss")
    policy_create(thresholds=ROUND, reason="round numbers")
    with chromium_page(live_server.url) as page:
        sign_in_with_keyboard(page, "boss")
        page.goto("/insights/thresholds/")
        number(page, "nudity", "approve").fill("0.3")
        typed = (number(page, "nudity", "approve").input_value(), int(slider(page, "nudity", "approve").input_value()))
        untouched = numbers(page)
        save(page, "nudity: approve up to 0.3")
        # The slider pushed past the other one: the other gives way, both numbers follow (not saved).
        confirm_before = page.locator("#band-confirm").is_visible()
        slider(page, "weapon", "approve").focus()
        page.keyboard.press("End")
        pushed = (number(page, "weapon", "reject").input_value(), int(slider(page, "weapon", "reject").input_value()))
        pushed_approve = number(page, "weapon", "approve").input_value()
        # No human band left for weapon: the confirmation appears, naming it.
        confirm_after = page.locator("#band-confirm").is_visible(), page.locator("#band-confirm").inner_text()
    assert typed == ("0.3", threshold_position(0.3))
    assert untouched == {f"{b}__{n}": repr(v) for n, bounds in ROUND.items() for b, v in bounds.items()} | {
        "approve_below__nudity": "0.3"
    }
    assert policy_current().thresholds == {**ROUND, "nudity": {"approve_below": 0.3, "reject_from": 0.8}}
    assert pushed == ("1", TOP) and pushed_approve == "1"
    assert confirm_before is False
    assert confirm_after[0] is True and "No human band for weapon." in confirm_after[1]
