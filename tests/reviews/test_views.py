from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.roles import Role
from moderation.models import Upload
from reviews.models import Decision, ModeratorPreferences, ReviewRound
from reviews.services.claims import round_claim
from tests.factories import make_round, make_upload, make_user

REVIEW_URLS = [
    ("get", "reviews:queue", False),
    ("get", "reviews:next", False),
    ("get", "reviews:grid", False),
    ("post", "reviews:undo", False),
    ("get", "reviews:preferences", False),
    ("get", "reviews:stats", False),
    ("get", "reviews:round", True),
    ("post", "reviews:decide", True),
    ("post", "reviews:skip", True),
    ("post", "reviews:lease", True),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "name", "needs_round"), REVIEW_URLS)
def test_review_pages_are_for_moderators_only(client, uploader, method, name, needs_round):
    round_ = make_round()
    url = reverse(name, args=[round_.pk] if needs_round else [])
    response = getattr(client, method)(url, {"label": "safe"} if method == "post" else None)
    assert response.status_code == 302 and response.url.startswith(reverse("login"))
    client.force_login(uploader)
    assert getattr(client, method)(url, {"label": "safe"} if method == "post" else None).status_code == 403
    round_.refresh_from_db()
    assert (round_.status, round_.claimed_by) == ("open", None)
    assert not Decision.objects.exists()


@pytest.mark.django_db
def test_a_moderator_cannot_open_the_admin_site_and_an_admin_can(client, moderator, admin_user):
    client.force_login(moderator)
    response = client.get("/admin/")
    assert response.status_code == 302 and "/admin/login/" in response.url
    assert client.get("/admin/reviews/queuesettings/").status_code == 302
    client.force_login(admin_user)
    assert client.get("/admin/").status_code == 200
    assert client.get("/admin/reviews/queuesettings/").status_code == 200


@pytest.mark.django_db
def test_queue_lists_open_rounds_with_counts(client, moderator):
    waiting = [make_round(score=s) for s in (0.1, 0.3)]
    make_round(reason="failed")
    make_upload()  # pending: not for humans yet
    client.force_login(moderator)
    response = client.get(reverse("reviews:queue"), {"ordering": "score_desc", "score_min": "0.05"})
    assert response.status_code == 200
    counts = response.context["counts"]
    assert (counts.waiting, counts.matching, counts.by_reason["failed"]) == (3, 2, 1)
    assert [r.pk for r in response.context["page"]] == [waiting[1].pk, waiting[0].pk]
    body = response.content.decode()
    assert "3</strong> waiting" in body and "2</strong> match your filters" in body
    assert "ordering=score_desc" in response.context["query"]


@pytest.mark.django_db
def test_bad_filter_values_are_a_400_with_a_message(client, moderator):
    make_round()
    client.force_login(moderator)
    response = client.get(reverse("reviews:queue"), {"score_min": "lots", "ordering": "random"})
    assert response.status_code == 400
    assert "Enter a number." in response.content.decode()


@pytest.mark.django_db
def test_next_claims_an_item_and_the_page_shows_it_blurred_with_a_lease(client, moderator):
    round_ = make_round(score=0.25)
    ModeratorPreferences.objects.create(user=moderator, blur_px=40, grayscale=True)
    client.force_login(moderator)
    response = client.get(reverse("reviews:next"), {"ordering": "oldest"})
    assert response.status_code == 302
    assert response.url == reverse("reviews:round", args=[round_.pk]) + "?ordering=oldest"
    page = client.get(response.url)
    body = page.content.decode()
    assert page.status_code == 200
    assert reverse("moderation:upload_image", args=[round_.upload_id]) in body
    assert 'class="preview blurred grayscale"' in body and "--blur: 40px" in body
    assert f'hx-post="{reverse("reviews:lease", args=[round_.pk])}"' in body
    assert 'id="decision-form"' in body
    round_.refresh_from_db()
    assert round_.claimed_by == moderator


@pytest.mark.django_db
def test_a_round_someone_else_holds_is_shown_read_only(client, moderator):
    round_ = make_round()
    round_claim(round_id=round_.pk, moderator=make_user(Role.MODERATOR, username="busy"))
    client.force_login(moderator)
    response = client.get(reverse("reviews:round", args=[round_.pk]))
    body = response.content.decode()
    assert "busy is reviewing this image right now" in body
    assert 'id="decision-form"' not in body


@pytest.mark.django_db
def test_deciding_moves_on_to_the_next_item_in_the_same_slice(client, moderator):
    first, second = make_round(score=0.3), make_round(score=0.2)
    client.force_login(moderator)
    client.get(reverse("reviews:round", args=[first.pk]))
    response = client.post(
        reverse("reviews:decide", args=[first.pk]) + "?ordering=score_desc",
        {"label": "harmful", "category": "weapon", "time_spent_ms": "2100"},
    )
    assert response.status_code == 302 and response.url == reverse("reviews:next") + "?ordering=score_desc"
    decision = Decision.objects.get()
    assert (decision.round, decision.label, decision.category, decision.moderator, decision.time_spent_ms) == (
        first,
        "harmful",
        "weapon",
        moderator,
        2100,
    )
    assert Upload.objects.get(pk=first.upload_id).status == "rejected"
    following = client.get(response.url)
    assert following.url.startswith(reverse("reviews:round", args=[second.pk]))


@pytest.mark.django_db
def test_a_decision_after_losing_the_lease_warns_and_stores_nothing(client, moderator):
    round_ = make_round()
    client.force_login(moderator)
    client.get(reverse("reviews:round", args=[round_.pk]))
    ReviewRound.objects.filter(pk=round_.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    round_claim(round_id=round_.pk, moderator=make_user(Role.MODERATOR, username="taker"))
    response = client.post(reverse("reviews:decide", args=[round_.pk]), {"label": "safe"}, follow=True)
    assert "taker is reviewing it now; your decision was not saved" in response.content.decode()
    assert not Decision.objects.exists()
    assert Upload.objects.get(pk=round_.upload_id).status == "queued"


@pytest.mark.django_db
def test_invalid_label_or_category_is_a_400(client, moderator):
    round_ = make_round()
    client.force_login(moderator)
    client.get(reverse("reviews:round", args=[round_.pk]))
    assert client.post(reverse("reviews:decide", args=[round_.pk]), {"label": "meh"}).status_code == 400
    response = client.post(reverse("reviews:decide", args=[round_.pk]), {"label": "harmful", "category": "spam"})
    assert response.status_code == 400
    assert not Decision.objects.exists()


@pytest.mark.django_db
def test_skip_gives_the_item_back_and_serves_it_again_when_only_skipped_ones_remain(client, moderator):
    first, second = make_round(), make_round()
    client.force_login(moderator)
    url = client.get(reverse("reviews:next"), {"ordering": "oldest"}).url
    assert url.startswith(reverse("reviews:round", args=[first.pk]))
    after_skip = client.post(reverse("reviews:skip", args=[first.pk]) + "?ordering=oldest")
    assert ReviewRound.objects.get(pk=first.pk).claimed_by is None
    assert client.get(after_skip.url).url.startswith(reverse("reviews:round", args=[second.pk]))
    client.post(reverse("reviews:skip", args=[second.pk]))
    again = client.get(reverse("reviews:next"), follow=True)
    assert "Only items you skipped are left" in again.content.decode()


@pytest.mark.django_db
def test_undo_reopens_the_last_decision_for_review(client, moderator):
    round_ = make_round()
    client.force_login(moderator)
    client.get(reverse("reviews:round", args=[round_.pk]))
    client.post(reverse("reviews:decide", args=[round_.pk]), {"label": "harmful", "category": "weapon"})
    response = client.post(reverse("reviews:undo"))
    reopened = ReviewRound.objects.get(upload=round_.upload, status="open")
    assert response.url == reverse("reviews:round", args=[reopened.pk])
    assert reopened.claimed_by == moderator
    assert Upload.objects.get(pk=round_.upload_id).status == "queued"
    nothing = client.post(reverse("reviews:undo"), follow=True)
    assert "Nothing to undo" in nothing.content.decode()


@pytest.mark.django_db
def test_lease_heartbeat_renews_and_reports_a_lost_claim(client, moderator):
    round_ = make_round()
    client.force_login(moderator)
    client.get(reverse("reviews:round", args=[round_.pk]))
    ReviewRound.objects.filter(pk=round_.pk).update(lease_expires_at=timezone.now() + timedelta(seconds=3))
    ok = client.post(reverse("reviews:lease", args=[round_.pk]))
    assert ok.status_code == 200 and "Yours until" in ok.content.decode()
    assert ReviewRound.objects.get(pk=round_.pk).lease_expires_at > timezone.now() + timedelta(seconds=60)
    ReviewRound.objects.filter(pk=round_.pk).update(claimed_by=make_user(Role.MODERATOR))
    lost = client.post(reverse("reviews:lease", args=[round_.pk]))
    assert lost.status_code == 409 and "claim on this image was lost" in lost.content.decode()


@pytest.mark.django_db
def test_grid_claims_a_page_and_decides_the_selection(client, moderator):
    ModeratorPreferences.objects.create(user=moderator, grid_size=12)
    rounds = [make_round(score=0.01 * i) for i in range(1, 15)]
    client.force_login(moderator)
    page = client.get(reverse("reviews:grid"))
    held = page.context["rounds"]
    assert [r.pk for r in held] == [r.pk for r in rounds[:12]]  # lowest score first by default
    assert ReviewRound.objects.filter(claimed_by=moderator).count() == 12
    chosen = [held[0].pk, held[3].pk]
    response = client.post(
        reverse("reviews:grid") + "?ordering=score_asc", {"rounds": chosen, "label": "harmful", "category": "nudity"}
    )
    assert response.status_code == 302
    assert sorted(Decision.objects.values_list("round_id", "label", "category")) == [
        (chosen[0], "harmful", "nudity"),
        (chosen[1], "harmful", "nudity"),
    ]
    refill = client.get(response.url)
    assert len(refill.context["rounds"]) == 12  # the page fills up again from the queue


@pytest.mark.django_db
def test_grid_refuses_rounds_it_did_not_hand_out(client, moderator):
    mine = make_round(score=0.1)
    theirs = make_round(score=0.2)
    round_claim(round_id=theirs.pk, moderator=make_user(Role.MODERATOR))
    client.force_login(moderator)
    response = client.post(reverse("reviews:grid"), {"rounds": [mine.pk, theirs.pk], "label": "safe"})
    assert response.status_code == 400
    assert not Decision.objects.exists()


@pytest.mark.django_db
def test_preferences_are_saved_and_validated(client, moderator):
    client.force_login(moderator)
    response = client.post(reverse("reviews:preferences"), {"blur_px": "10", "grayscale": "on", "grid_size": "24"})
    assert response.status_code == 302
    prefs = ModeratorPreferences.objects.get(user=moderator)
    assert (prefs.blur_px, prefs.grayscale, prefs.grid_size) == (10, True, 24)
    bad = client.post(reverse("reviews:preferences"), {"blur_px": "999", "grid_size": "100"})
    assert bad.status_code == 400
    assert ModeratorPreferences.objects.get(user=moderator).blur_px == 10


@pytest.mark.django_db
def test_stats_show_a_moderator_their_own_row_and_an_admin_everyone(client, moderator, admin_user):
    other = make_user(Role.MODERATOR, username="colleague")
    for who in (moderator, other):
        round_ = round_claim(round_id=make_round().pk, moderator=who)
        client.force_login(who)
        client.post(reverse("reviews:decide", args=[round_.pk]), {"label": "safe"})
    client.force_login(moderator)
    assert [r.username for r in client.get(reverse("reviews:stats")).context["rows"]] == ["moderator"]
    client.force_login(admin_user)
    assert sorted(r.username for r in client.get(reverse("reviews:stats")).context["rows"]) == [
        "colleague",
        "moderator",
    ]


@pytest.mark.django_db
def test_review_page_loads_the_counts_after_rendering(client, moderator):
    round_ = make_round(score=0.2)
    make_round(reason="failed")
    client.force_login(moderator)
    page = client.get(reverse("reviews:round", args=[round_.pk]) + "?ordering=oldest").content.decode()
    assert 'hx-get="/review/counts/?ordering=oldest" hx-trigger="load"' in page
    fragment = client.get(reverse("reviews:counts"), {"ordering": "oldest"})
    body = fragment.content.decode()
    assert fragment.status_code == 200 and "2</strong> waiting" in body and 'hx-trigger="every 15s"' in body


@pytest.mark.django_db
def test_an_animation_opens_on_its_worst_frame_with_steps_through_the_scored_frames(client, moderator):
    from PIL import Image

    from tests.factories import score_frames
    from tests.images import animated

    frames = [Image.new("RGB", (40, 30), (60 * i, 0, 0)) for i in range(4)]
    upload = score_frames(
        make_upload(data=animated(frames, "GIF")), {0: {"weapon": 0.1}, 1: {"weapon": 0.7}, 3: {"weapon": 0.2}}
    )
    round_ = make_round(upload)
    round_claim(round_id=round_.pk, moderator=moderator)
    client.force_login(moderator)
    body = client.get(reverse("reviews:round", args=[round_.pk])).content.decode()
    assert "frame 2 of 4 (worst) · 0.700" in body
    assert "3 of 4 frames scored" in body
    for index in (0, 1, 3):
        assert reverse("moderation:upload_frame", args=[upload.pk, index]) in body
    assert 'class="preview blurred' in body  # the frames are blurred like every image
    assert "<kbd>,</kbd> <kbd>.</kbd>" in body and "js/frames.js" in body  # in the ? help too


@pytest.mark.django_db
def test_a_still_image_has_no_frame_controls(client, moderator):
    round_ = make_round()
    round_claim(round_id=round_.pk, moderator=moderator)
    client.force_login(moderator)
    body = client.get(reverse("reviews:round", args=[round_.pk])).content.decode()
    assert "data-frames" not in body and "js/frames.js" not in body
