"""A moderator in a real browser (Debian chromium), keyboard only: sign in, clear a queue of 50
images with a, x, 1-5, space and backspace, check blur and reveal, and save a screenshot."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings

from accounts.roles import Role
from moderation.models import Upload
from reviews.models import Decision, ModeratorPreferences, ReviewRound
from tests.e2e.browser import chromium_page, require_chromium
from tests.factories import make_round, make_upload, make_user
from tests.images import solid

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

ROUND_URL = re.compile(r"/review/r/(\d+)/")


@pytest.fixture(autouse=True)
def browser_ready(monkeypatch):
    require_chromium()
    # Playwright's sync API keeps an event loop in this thread; the ORM calls between browser
    # steps are ordinary synchronous code.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    # No ORM calls inside ``chromium_page()``: Playwright's sync API runs the test in a greenlet
    # with its own context, where Django would open (and never close) a second connection.


def screenshot_dir() -> Path:
    folder = Path(settings.VAR_DIR) / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def sign_in_with_keyboard(page, username: str) -> None:
    page.goto("/login/")
    page.keyboard.type(username)  # the username field has focus on load
    page.keyboard.press("Tab")
    page.keyboard.type("pw-for-tests-1")
    with page.expect_navigation():
        page.keyboard.press("Enter")


def current_round(page) -> int:
    match = ROUND_URL.search(page.url)
    assert match, page.url
    return int(match.group(1))


def press_and_wait(page, key: str) -> None:
    with page.expect_navigation():
        page.keyboard.press(key)
    page.wait_for_load_state("domcontentloaded")


def test_a_moderator_clears_fifty_items_with_the_keyboard_alone(live_server):
    moderator = make_user(Role.MODERATOR, username="kbd")
    ModeratorPreferences.objects.create(user=moderator, blur_px=30)
    submitter = make_user()
    rounds = [
        make_round(make_upload(submitter, solid(color=(i * 5 % 255, 90, 200 - i))), score=0.05 + i * 0.006)
        for i in range(50)
    ]

    with chromium_page(live_server.url) as page:
        sign_in_with_keyboard(page, "kbd")
        page.goto("/review/?ordering=oldest")
        assert "50</strong> waiting" in page.content()
        press_and_wait(page, "n")
        first = current_round(page)
        assert first == rounds[0].pk

        # Blurred by default with the moderator's strength; r reveals, r blurs again.
        figure = page.locator("figure.preview")
        assert "blurred" in figure.get_attribute("class")
        assert "blur(30px)" in page.eval_on_selector("figure.preview img", "img => getComputedStyle(img).filter")
        page.keyboard.press("r")
        assert "blurred" not in figure.get_attribute("class")
        page.wait_for_function("() => getComputedStyle(document.querySelector('figure.preview img')).filter === 'none'")
        page.keyboard.press("r")
        assert "blurred" in figure.get_attribute("class")

        # ? shows every shortcut; Escape closes the list.
        page.keyboard.press("?")
        assert page.locator("#shortcuts").is_visible()
        assert "Undo your last decision" in page.locator("#shortcuts").inner_text()
        page.keyboard.press("Escape")
        assert not page.locator("#shortcuts").is_visible()
        page.screenshot(path=str(screenshot_dir() / "review-page.png"), full_page=True)

        decided: dict[int, tuple[str, str]] = {}
        skipped = None
        undone_once = False
        while ROUND_URL.search(page.url):
            round_id = current_round(page)
            index = len(decided)
            if index == 5 and skipped is None:
                skipped = round_id
                press_and_wait(page, " ")  # skip: it comes back at the end
                continue
            if index == 8 and not undone_once:
                undone_once = True
                previous = list(decided)[-1]
                press_and_wait(page, "Backspace")  # undo the last decision: its image comes back
                reopened = (current_round(page), previous)
                del decided[previous]
                decided[reopened[0]] = ("safe", "")
                press_and_wait(page, "a")
                continue
            if index % 3 == 0:
                page.keyboard.press("2")  # category 2 (nudity), then reject
                decided[round_id] = ("harmful", "nudity")
                press_and_wait(page, "x")
            else:
                decided[round_id] = ("safe", "")
                press_and_wait(page, "a")
            assert len(decided) <= 50, "the queue should have run out"
        assert "Nothing left to review here" in page.content()
        page.wait_for_load_state("networkidle")  # no request left in flight on the live server
        page.screenshot(path=str(screenshot_dir() / "queue-cleared.png"))

    undo_round = ReviewRound.objects.get(pk=reopened[0])
    assert (undo_round.reopened_from_id, undo_round.claimed_by) == (reopened[1], moderator)
    assert ReviewRound.objects.get(pk=reopened[1]).status == "undone"
    assert not ReviewRound.objects.filter(status="open").exists()
    assert Upload.objects.filter(status__in=["queued", "failed"]).count() == 0
    assert skipped in decided  # the skipped item was served again and decided
    standing = {d.round_id: (d.label, d.category) for d in Decision.objects.filter(round__status="decided")}
    assert standing == decided
    assert len(standing) == 50 and Decision.objects.count() == 51  # the undone decision stays on record
    for round_id, (label, _) in decided.items():
        upload_id = ReviewRound.objects.get(pk=round_id).upload_id
        assert Upload.objects.get(pk=upload_id).status == ("rejected" if label == "harmful" else "approved")
    assert {ReviewRound.objects.get(pk=pk).upload_id for pk in decided} == {r.upload_id for r in rounds}


def test_grid_mode_selects_and_decides_with_the_keyboard(live_server):
    make_user(Role.MODERATOR, username="grid")
    rounds = [make_round(score=0.01 * (i + 1)) for i in range(14)]
    with chromium_page(live_server.url) as page:
        sign_in_with_keyboard(page, "grid")
        page.goto("/review/")
        press_and_wait(page, "g")
        assert page.locator("[data-tile]").count() == 14
        page.keyboard.press(" ")  # select the first tile
        page.keyboard.press("ArrowRight")
        page.keyboard.press("ArrowRight")
        page.keyboard.press(" ")  # and the third
        assert page.locator("[data-tile].selected").count() == 2
        page.keyboard.press("3")  # category 3 (violence)
        press_and_wait(page, "x")
        assert "Marked 2 harmful" in page.content()
        assert page.locator("[data-tile]").count() == 12
        page.keyboard.press("*")  # select everything left
        press_and_wait(page, "a")
        page.wait_for_load_state("networkidle")
        page.screenshot(path=str(screenshot_dir() / "grid-cleared.png"))
    labels = dict(Decision.objects.values_list("round_id", "label"))
    assert labels.pop(rounds[0].pk) == labels.pop(rounds[2].pk) == "harmful"
    assert set(labels.values()) == {"safe"} and len(labels) == 12
    assert set(Decision.objects.filter(label="harmful").values_list("category", flat=True)) == {"violence"}


def test_a_moderator_steps_through_the_frames_of_an_animation_with_comma_and_period(live_server):
    from PIL import Image

    from tests.factories import score_frames
    from tests.images import animated

    make_user(Role.MODERATOR, username="frames")
    frames = [Image.new("RGB", (40, 30), (60 * i, 90, 90)) for i in range(4)]
    upload = score_frames(
        make_upload(data=animated(frames, "GIF")), {i: {"weapon": w} for i, w in enumerate([0.1, 0.2, 0.8, 0.3])}
    )
    round_ = make_round(upload)
    frame_url = f"/uploads/{upload.pk}/frames/"

    with chromium_page(live_server.url) as page:
        sign_in_with_keyboard(page, "frames")
        page.goto(f"/review/r/{round_.pk}/")
        label = page.locator("[data-frame-label]")
        image = page.locator("figure.preview img")
        assert label.inner_text() == "frame 3 of 4 (worst) · 0.800"
        page.keyboard.press(".")
        assert label.inner_text() == "frame 4 of 4 · 0.300"
        assert image.get_attribute("src").endswith(frame_url + "3")
        page.keyboard.press(".")  # wraps round to the first frame
        page.keyboard.press(",")
        page.keyboard.press(",")
        assert label.inner_text() == "frame 3 of 4 (worst) · 0.800"
        page.locator("[data-frame-step='-1']").click()
        assert label.inner_text() == "frame 2 of 4 · 0.200"
        assert image.get_attribute("src").endswith(frame_url + "1")
        page.wait_for_function("document.querySelector('figure.preview img').naturalWidth > 0")
        assert "blurred" in page.locator("figure.preview").get_attribute("class")  # clicks don't reveal


def test_a_moderator_reviews_a_video_with_the_keyboard(live_server):
    """The video opens blurred, muted and paused; a worst frame's time jumps the player there; r
    reveals; a decides, like any upload."""
    from moderation.models import Score, Upload
    from moderation.services.model_versions import model_version_ensure_active
    from reviews.models import Decision
    from tests.videos import clip_with_insert

    make_user(Role.MODERATOR, username="videos")
    upload = make_upload(data=clip_with_insert(seconds=6, insert_at=3, container="webm", codec="libvpx-vp9"))
    assert upload.kind == "video"
    harmful = [0.01, 0.02, 0.01, 0.9, 0.7, 0.05]
    score = Score.objects.create(
        upload=upload,
        model_version=model_version_ensure_active(),
        harmful_score=0.9,
        category_scores={"weapon": 0.9},
        latency_ms=1.0,
        worst_frame=3,
        frames=[{"index": i, "time": float(i), "scores": {"weapon": w}} for i, w in enumerate(harmful)],
    )
    Upload.objects.filter(pk=upload.pk).update(score=score, phash="0" * 16)
    upload.refresh_from_db()
    round_ = make_round(upload)

    with chromium_page(live_server.url) as page:
        sign_in_with_keyboard(page, "videos")
        page.goto(f"/review/r/{round_.pk}/")
        player = page.locator("[data-player]")
        page.wait_for_function("document.querySelector('[data-player]').readyState >= 1")  # served and playable
        state = page.eval_on_selector("[data-player]", "v => [v.muted, v.paused, v.autoplay, v.duration]")
        figure = page.locator("figure.preview.video")
        assert state[:3] == [True, True, False] and abs(state[3] - 6) < 0.5
        assert "blurred" in figure.get_attribute("class")
        assert "blur(" in page.eval_on_selector("[data-player]", "v => getComputedStyle(v).filter")
        times = page.locator("[data-seek]").evaluate_all("bs => bs.map(b => b.dataset.seek)")
        assert times == ["3.0", "4.0", "5.0", "1.0", "0.0"]  # worst first
        page.locator("[data-seek='4.0']").click()
        page.wait_for_function("Math.abs(document.querySelector('[data-player]').currentTime - 4) < 0.3")
        assert player.evaluate("v => v.paused") is True
        assert "blurred" in figure.get_attribute("class")  # seeking does not reveal
        page.keyboard.press("r")
        assert "blurred" not in figure.get_attribute("class")
        page.screenshot(path=str(screenshot_dir() / "review-video.png"), full_page=True)
        press_and_wait(page, "a")
    decision = Decision.objects.get(upload=upload)
    assert decision.label == "safe"
