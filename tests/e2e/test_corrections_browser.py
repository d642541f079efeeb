"""Correcting decisions in a real browser (Debian chromium): backspace after the queue ran out and
in grid mode, the grid's selection and reveal, the decisions page, and an audit approval that
waits for a look. No ORM calls inside ``chromium_page()`` (see test_review_browser)."""

from __future__ import annotations

import pytest
from django.utils import timezone

from accounts.roles import Role
from moderation.models import Upload
from reviews.models import Decision, ReviewRound
from reviews.services.claims import round_claim
from reviews.services.decisions import decision_create
from reviews.services.rounds import round_open
from tests.e2e.test_review_browser import (  # noqa: F401  (browser_ready is an autouse fixture)
    browser_ready,
    current_round,
    press_and_wait,
    screenshot_dir,
    sign_in_with_keyboard,
)
from tests.factories import make_round, make_upload, make_user

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_backspace_undoes_the_last_decision_after_the_queue_ran_out(live_server):
    make_user(Role.MODERATOR, username="empty")
    only = make_round(score=0.4)
    from tests.e2e.browser import chromium_page

    with chromium_page(live_server.url) as page:
        sign_in_with_keyboard(page, "empty")
        page.goto(f"/review/r/{only.pk}/")
        press_and_wait(page, "a")  # the last item: the queue page says so, and offers undo
        assert "Nothing left to review here" in page.content()
        assert "Backspace undoes it" in page.content()
        press_and_wait(page, "Backspace")
        reopened = current_round(page)
        assert "Decision undone" in page.content()
        page.keyboard.press("2")
        press_and_wait(page, "x")
    assert ReviewRound.objects.get(pk=only.pk).status == "undone"
    decision = Decision.objects.get(round_id=reopened)
    assert (decision.label, decision.category, decision.revealed) == ("harmful", "nudity", False)


def test_grid_selects_reveals_rejects_with_the_top_category_and_undoes(live_server):
    make_user(Role.MODERATOR, username="gridfix")
    rounds = [make_round(score=0.1 * (i + 1)) for i in range(3)]  # top category "weapon"
    from tests.e2e.browser import chromium_page

    with chromium_page(live_server.url) as page:
        sign_in_with_keyboard(page, "gridfix")
        page.goto("/review/grid/")
        tiles = page.locator("[data-tile]")
        assert tiles.count() == 3
        # A click on a picture reveals it and does not select it.
        tiles.nth(1).locator("img").click()
        assert "blurred" not in tiles.nth(1).get_attribute("class")
        assert not tiles.nth(1).locator("input[name=rounds]").is_checked()
        # r reveals the focused tile; space selects it; the selection outweighs the focus ring.
        page.keyboard.press("ArrowLeft")  # from the clicked tile back to the first
        page.keyboard.press("r")
        assert "blurred" not in tiles.nth(0).get_attribute("class")
        page.keyboard.press(" ")
        assert "selected" in tiles.nth(0).get_attribute("class")
        selected = tiles.nth(0).evaluate("t => parseFloat(getComputedStyle(t).borderTopWidth)")
        page.keyboard.press("ArrowRight")
        focused = tiles.nth(1).evaluate("t => parseFloat(getComputedStyle(t).borderTopWidth)")
        assert selected >= focused + 2
        assert tiles.nth(0).locator(".tile-selected-text").is_visible()
        page.screenshot(path=str(screenshot_dir() / "grid-selected.png"))
        press_and_wait(page, "x")  # category: each image's top category (the default)
        assert "Marked 1 harmful" in page.content()
        assert page.locator("[data-tile]").count() == 2
        press_and_wait(page, "Backspace")
        assert "back in your grid" in page.content()
        assert page.locator("[data-tile]").count() == 3
    first = Decision.objects.get(round=rounds[0])
    assert (first.label, first.category, first.revealed) == ("harmful", "weapon", True)
    assert ReviewRound.objects.get(pk=rounds[0].pk).status == "undone"
    assert Upload.objects.get(pk=rounds[0].upload_id).status == "queued"


def test_a_moderator_changes_a_decision_from_the_decisions_page(live_server):
    moderator = make_user(Role.MODERATOR, username="mine")
    round_ = round_claim(round_id=make_round(score=0.7).pk, moderator=moderator)
    old = decision_create(round_id=round_.pk, moderator=moderator, label="safe")
    from tests.e2e.browser import chromium_page

    with chromium_page(live_server.url) as page:
        sign_in_with_keyboard(page, "mine")
        page.goto("/review/")
        with page.expect_navigation():
            page.locator("header nav a", has_text="My decisions").click()
        row = page.locator(f"[data-decision='{old.pk}']")
        assert str(old.upload_id)[:8] in row.inner_text() and "0.700" in row.inner_text()
        assert "overturned the model" in row.inner_text()
        thumb = row.locator("[data-thumb]")
        page.wait_for_function("document.querySelector('[data-thumb] img').naturalWidth > 0")
        assert "blur(" in thumb.locator("img").evaluate("i => getComputedStyle(i).filter")
        thumb.click()
        assert "blurred" not in thumb.get_attribute("class")
        page.screenshot(path=str(screenshot_dir() / "my-decisions.png"), full_page=True)
        with page.expect_navigation():
            row.get_by_role("button", name="Change").click()
        reopened = current_round(page)
        page.keyboard.press("1")
        press_and_wait(page, "x")
        page.goto("/review/decisions/")
        assert page.locator("table.decisions tbody tr").count() == 1
        assert "earlier:" in page.locator("table.decisions").inner_text()
    assert Decision.objects.get(round_id=reopened).label == "harmful"
    assert Upload.objects.get(pk=old.upload_id).status == "rejected"


def test_approving_an_automatic_reject_waits_for_a_reveal(live_server):
    moderator = make_user(Role.MODERATOR, username="auditor")
    upload = make_upload()
    Upload.objects.filter(pk=upload.pk).update(status="rejected", decided_by="auto", decided_at=timezone.now())
    upload.refresh_from_db()
    round_ = round_claim(round_id=round_open(upload=upload, reason="audit").pk, moderator=moderator)
    from tests.e2e.browser import chromium_page

    with chromium_page(live_server.url) as page:
        sign_in_with_keyboard(page, "auditor")
        page.goto(f"/review/r/{round_.pk}/")
        page.keyboard.press("a")  # nothing is sent: the warning asks for a look
        page.wait_for_selector("[data-needs-reveal].attention")
        assert current_round(page) == round_.pk
        page.keyboard.press("r")
        press_and_wait(page, "a")
    decision = Decision.objects.get(round=round_)
    assert (decision.label, decision.revealed) == ("safe", True)
