"""The threshold page in a real browser: the live projection (JavaScript) agrees with the server's
(Python) for the positions the admin moves the sliders to, and saving keeps those thresholds."""

from __future__ import annotations

import pytest

from accounts.roles import Role
from metrics.selectors.traffic import traffic_cells
from metrics.selectors.windows import window_named
from metrics.services.projection import positions_from_thresholds, project, traffic_from_cells
from moderation.bins import EDGES
from moderation.services.model_versions import model_version_ensure_active
from moderation.services.policies import policy_current
from tests.e2e.browser import chromium_page
from tests.e2e.test_review_browser import browser_ready, screenshot_dir, sign_in_with_keyboard  # noqa: F401
from tests.factories import make_user
from tests.metrics.helpers import labelled

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_sliders_update_the_projection_like_the_server_computes_it(live_server):
    make_user(Role.ADMIN, username="boss")
    moderator = make_user(Role.MODERATOR)
    for score, label in [(0.001, "safe")] * 6 + [(0.01, "harmful"), (0.2, "safe"), (0.3, "harmful"), (0.7, "harmful")]:
        labelled(moderator, score, label)
    policy = policy_current()
    with chromium_page(live_server.url) as page:
        sign_in_with_keyboard(page, "boss")
        page.goto("/insights/thresholds/?window=24h")
        approve = page.locator("tr[data-category=weapon] input[data-kind=approve]")
        reject = page.locator("tr[data-category=weapon] input[data-kind=reject]")
        start = int(approve.input_value())
        approve.focus()
        for _ in range(25):
            page.keyboard.press("ArrowRight")  # approve_below moves up 25 bins
        reject.focus()
        for _ in range(10):
            page.keyboard.press("ArrowLeft")
        a, r = int(approve.input_value()), int(reject.input_value())
        assert a == start + 25
        shown = {name: page.locator(f"[data-out={name}]").inner_text() for name in ("approved", "queued", "rejected")}
        shown["harmful-approved"] = page.locator("[data-out=harmful-approved]").inner_text()
        page.screenshot(path=str(screenshot_dir() / "thresholds.png"), full_page=True)

        page.locator("textarea[name=reason]").fill("wider auto-approve, measured on the last day")
        with page.expect_navigation():
            page.locator("#policy-form button[type=submit]").click()
        assert "Saved policy" in page.content()
    positions = {"weapon": (a, r), "nudity": positions_from_thresholds(policy.thresholds)["nudity"]}
    cells = traffic_cells(model_version=model_version_ensure_active(), window=window_named("24h"))
    expected = project(traffic_from_cells(cells, days=1, categories=["nudity", "weapon"]), positions)
    assert shown == {
        "approved": str(expected.approved),
        "queued": str(expected.queued),
        "rejected": str(expected.rejected),
        "harmful-approved": str(expected.harmful_approved),
    }
    assert expected.approved > 6  # the move changed something
    saved = policy_current()
    assert saved.version == policy.version + 1
    assert saved.thresholds["weapon"] == {"approve_below": EDGES[a], "reject_from": EDGES[r]}
