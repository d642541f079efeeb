"""Decide once, in a real browser (Debian chromium): the review page shows a picture's near copies
waiting in the queue, shift+x rejects all of them with one keystroke (each its own decision), and
backspace takes the whole group back. No ORM calls inside ``chromium_page()`` (see
test_review_browser)."""

from __future__ import annotations

import random

import pytest

from accounts.roles import Role
from hashes.models import HashMatch, UploadHash
from moderation.models import Upload
from reviews.models import Decision, ModeratorPreferences, ReviewRound
from tests.e2e.browser import chromium_page
from tests.e2e.test_review_browser import (  # noqa: F401  (browser_ready is an autouse fixture)
    browser_ready,
    current_round,
    press_and_wait,
    screenshot_dir,
    sign_in_with_keyboard,
)
from tests.factories import make_round, make_upload, make_user
from tests.images import solid

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

BASE = random.Random(11).getrandbits(256)


def hashed_round(n: int, bits: int) -> ReviewRound:
    """A queued still image whose PDQ hash is ``bits`` bits from BASE."""
    round_ = make_round(make_upload(data=solid(color=(n * 53 % 256, n * 97 % 256, 90))), score=0.4 + n / 100)
    value = BASE
    for position in random.Random(n).sample(range(256), bits):
        value ^= 1 << position
    UploadHash.objects.create(upload=round_.upload, frame=0, pdq=f"{value:064x}", quality=95)
    return round_


def test_one_keystroke_rejects_the_picture_and_its_near_copies_and_backspace_takes_them_back(live_server):
    moderator = make_user(Role.MODERATOR, username="once")
    ModeratorPreferences.objects.create(user=moderator, blur_px=20)
    group = [hashed_round(i, bits) for i, bits in enumerate([0, 3, 7, 12, 18, 25])]
    far = hashed_round(50, 60)
    HashMatch.objects.create(
        upload=group[0].upload, list_name="team-memes", action="queue", category="hate", pdq="0" * 64, distance=9
    )
    lead, members = group[0], group[1:]

    with chromium_page(live_server.url) as page:
        sign_in_with_keyboard(page, "once")
        page.goto(f"/review/r/{lead.pk}/?ordering=oldest")
        assert "This picture and 5 near copies waiting" in page.content()
        assert "Matches hash list team-memes (hate), 9 bits" in page.locator("[data-hash-match]").inner_text()
        strip = page.locator(".copy-strip [data-thumb]")
        assert strip.count() == 5
        assert "blurred" in strip.first.get_attribute("class")  # blurred like the main image
        page.keyboard.press("?")
        assert "every near copy" in page.locator("#shortcuts").inner_text()
        page.keyboard.press("Escape")
        page.screenshot(path=str(screenshot_dir() / "review-group.png"), full_page=True)

        page.keyboard.press("4")  # category 4 (hate), then the one keystroke
        press_and_wait(page, "Shift+X")
        assert "this picture and 5 near copies, each its own decision" in page.content()
        next_round = current_round(page)  # the queue goes on with what is left: the far picture

        press_and_wait(page, "Backspace")
        assert "Group decision undone, with 5 near copies" in page.content()
        reopened = current_round(page)
        page.wait_for_load_state("networkidle")

    decisions = list(Decision.objects.order_by("id"))
    assert [d.round_id for d in decisions] == [r.pk for r in group]
    assert {(d.label, d.category) for d in decisions} == {("harmful", "hate")}
    assert len({d.group for d in decisions}) == 1 and decisions[0].group is not None
    assert [d.revealed for d in decisions] == [False] * 6  # the main image stayed blurred; the copies too
    assert next_round == far.pk
    # Undone: every member back in the queue, held for this moderator; the picture opened to decide again.
    assert set(ReviewRound.objects.filter(pk__in=[r.pk for r in group]).values_list("status", flat=True)) == {"undone"}
    again = ReviewRound.objects.get(pk=reopened)
    assert again.upload_id == lead.upload_id and again.claimed_by == moderator
    assert ReviewRound.objects.filter(number=2, status="open", claimed_by=moderator).count() == 6
    assert set(Upload.objects.filter(pk__in=[r.upload_id for r in members]).values_list("status", flat=True)) == {
        "queued"
    }
