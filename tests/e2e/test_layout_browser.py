"""Every page, as the role that uses it, in a real browser (Debian chromium) at 900 and 1440 px:
no horizontal overflow (document.scrollWidth <= innerWidth), no missing static file or favicon,
styled error pages; and the review page keeps a 15-second lease alive while it stays open."""

from __future__ import annotations

import re
import time

import pytest
from django.utils import timezone

from accounts.roles import Role
from accounts.services import api_client_create
from feedback.models import TrainingRun
from integrations.models import WebhookDelivery
from integrations.services.webhooks import webhook_set
from moderation.models import Upload
from moderation.services.model_versions import model_version_ensure_active
from reviews.models import QueueSettings, ReviewRound
from reviews.services.claims import round_claim
from reviews.services.decisions import decision_create
from tests.e2e.browser import chromium_page, require_chromium
from tests.factories import make_round, make_upload, make_user
from tests.images import solid

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

WIDTHS = (900, 1440)
LONG_NAME = "holiday-" + "x" * 180 + ".jpg"  # one word, no place to break


@pytest.fixture(autouse=True)
def browser_ready(monkeypatch):
    require_chromium()
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # see test_review_browser.py


def sign_in(page, username: str) -> None:
    page.context.clear_cookies()
    page.goto("/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", "pw-for-tests-1")
    with page.expect_navigation():
        page.press("input[name=password]", "Enter")


def world() -> dict[str, list[str]]:
    """A day-one install with a little of everything, and the pages each role visits."""
    model_version_ensure_active()
    make_user(Role.ADMIN, username="boss")
    moderator = make_user(Role.MODERATOR, username="mod")
    uploader = make_user(Role.UPLOADER, username="up")
    client, _ = api_client_create(name="platform")
    webhook_set(client=client, url="https://hooks.example.com/" + "a" * 150)
    mine = make_upload(uploader, solid(color=(10, 200, 10)))
    Upload.objects.filter(pk=mine.pk).update(original_filename=LONG_NAME, metadata={"note": "n" * 300})
    decided = make_round(make_upload(client.user, solid(color=(200, 10, 10))), score=0.7)
    round_claim(round_id=decided.pk, moderator=moderator)
    decision_create(round_id=decided.pk, moderator=moderator, label="harmful", category="weapon")
    WebhookDelivery.objects.create(
        client=client,
        upload=decided.upload,
        event="upload.decided",
        body="{}",
        max_attempts=1,
        next_attempt_at=timezone.now(),
    )
    for i in range(14):
        make_round(make_upload(client.user, solid(color=(i * 15, 60, 90))), score=0.3 + i * 0.01)
    held = make_round(make_upload(client.user, solid(color=(5, 5, 250))), score=0.5)
    Upload.objects.filter(pk=held.upload_id).update(original_filename=LONG_NAME, metadata={"k": "v" * 300})
    TrainingRun.objects.create(trigger="admin", status="failed", log="epoch " + "=" * 1500 + "\n" * 3 + "done")
    return {
        "anonymous": ["/login/"],
        "up": ["/uploads/", f"/uploads/{mine.pk}/", "/no-such-page/", "/review/"],
        "mod": [
            "/review/",
            f"/review/r/{held.pk}/",
            "/review/grid/",
            "/review/preferences/",
            "/review/stats/",
            f"/uploads/{decided.upload_id}/",
            "/insights/dashboard/",  # 403
        ],
        "boss": [
            "/insights/thresholds/",
            "/insights/dashboard/",
            "/feedback/models/",
            "/feedback/changes/",
            "/feedback/training/",
            "/feedback/export/",
            "/integrations/webhooks/",
            f"/uploads/{mine.pk}/",
            "/review/stats/",
            "/admin/",
            "/admin/reviews/queuesettings/",
        ],
    }


def test_no_page_overflows_at_900_or_1440_px_and_nothing_is_missing(live_server):
    pages = world()
    overflow, missing, unstyled = [], [], []
    with chromium_page(live_server.url) as page:
        page.on("response", lambda r: missing.append(r.url) if r.status == 404 and "/static/" in r.url else None)
        for role, paths in pages.items():
            if role == "anonymous":
                page.context.clear_cookies()
            else:
                sign_in(page, role)
            for path in paths:
                for width in WIDTHS:
                    page.set_viewport_size({"width": width, "height": 900})
                    response = page.goto(path)
                    page.wait_for_load_state("load")
                    for details in page.locator("details").all():  # logs and attempt lists, opened
                        if details.is_visible():
                            details.evaluate("d => d.open = true")
                    sizes = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
                    if sizes[0] > sizes[1]:
                        wide = page.evaluate(
                            """() => [...document.querySelectorAll('body *')]
                                .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
                                .slice(-3).map(e => e.tagName + '.' + e.className)"""
                        )
                        overflow.append(f"{role} {path} at {width}: {sizes[0]} px wide ({wide})")
                    spilled = page.evaluate(
                        """() => [...document.querySelectorAll('.card')].flatMap(card => {
                            const edge = card.getBoundingClientRect().right + 1;
                            return [...card.querySelectorAll('*')]
                                .filter(e => e.getClientRects().length && e.getBoundingClientRect().right > edge)
                                .slice(0, 2).map(e => e.tagName + '.' + e.className);
                        })"""
                    )
                    if spilled:
                        overflow.append(f"{role} {path} at {width}: out of its card: {spilled}")
                    if response.status >= 400 and not path.startswith("/admin"):
                        background = page.eval_on_selector(".topbar", "e => getComputedStyle(e).backgroundColor")
                        if background != "rgb(17, 24, 39)":
                            unstyled.append(f"{role} {path}: {response.status}")
        page.goto("/favicon.ico")
        icon = page.evaluate("() => document.contentType")
    assert not overflow, "\n".join(overflow)
    assert not missing, missing
    assert not unstyled, unstyled
    assert icon == "image/svg+xml"


def test_the_review_page_keeps_a_15_second_lease_while_open(live_server):
    """With lease_seconds=15 the page used to renew every 30 s, and lost its item after 15."""
    row = QueueSettings.load()
    row.lease_seconds = 15
    row.save()
    moderator = make_user(Role.MODERATOR, username="mod")
    round_ = make_round(make_upload(make_user(), solid(color=(1, 2, 3))), score=0.5)
    renewals = []
    with chromium_page(live_server.url) as page:
        sign_in(page, "mod")
        page.on("response", lambda r: renewals.append(r.status) if r.url.endswith("/lease") else None)
        page.goto(f"/review/r/{round_.pk}/")
        assert page.get_attribute("#lease", "hx-trigger") == "every 5s"
        opened = time.monotonic()
        # Past the first lease (15 s) and then some, waiting on the page's own renewals.
        page.wait_for_function("() => performance.now() > 20000", timeout=40_000, polling=500)
        assert time.monotonic() - opened >= 15
        assert page.locator("#lease[role=alert]").count() == 0
        text = page.inner_text("#lease")
    assert "Yours until" in text
    assert len(renewals) >= 3 and set(renewals) == {200}
    held = ReviewRound.objects.get(pk=round_.pk)
    assert held.claimed_by == moderator and held.status == "open"
    assert held.lease_expires_at > timezone.now()
    assert re.search(r"\d\d:\d\d:\d\d", text)
