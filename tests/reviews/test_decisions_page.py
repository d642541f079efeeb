"""The decisions page, changing a decision from it, reopening from the upload page, and the
review page's pieces that come with them. Permissions are checked on the server."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.roles import Role
from moderation.models import Upload
from reviews.models import Decision, ReviewRound
from reviews.services.claims import round_claim
from reviews.services.decisions import UNDO_DEPTH, decision_create, decision_undo
from reviews.services.rounds import round_open
from tests.factories import make_round, make_upload, make_user


def decided(moderator, label="safe", score=0.3, **kwargs) -> Decision:
    round_ = round_claim(round_id=make_round(score=score).pk, moderator=moderator)
    return decision_create(round_id=round_.pk, moderator=moderator, label=label, **kwargs)


@pytest.mark.django_db
def test_a_moderator_sees_only_their_own_decisions_with_thumbnails_ids_and_scores(client, moderator):
    other = make_user(Role.MODERATOR, username="other-mod")
    mine = decided(moderator, label="harmful", category="weapon", score=0.2)
    theirs = decided(other)
    client.force_login(moderator)
    response = client.get(reverse("reviews:decisions"))
    assert response.status_code == 200
    body = response.content.decode()
    assert f'data-decision="{mine.pk}"' in body and f'data-decision="{theirs.pk}"' not in body
    assert str(mine.upload_id)[:8] in body and "0.200" in body and "overturned the model" in body
    assert f"/uploads/{mine.upload_id}/image" in body and 'class="thumb blurred' in body
    assert "My decisions" in body


@pytest.mark.django_db
def test_a_moderator_asking_for_someone_elses_decisions_gets_a_403(client, moderator):
    make_user(Role.MODERATOR, username="other-mod")
    client.force_login(moderator)
    response = client.get(reverse("reviews:decisions"), {"moderator": "other-mod"})
    assert response.status_code == 403


@pytest.mark.django_db
def test_an_admin_filters_everyones_decisions(client, moderator, admin_user):
    other = make_user(Role.MODERATOR, username="other-mod")
    agreed = decided(moderator, label="safe", score=0.1)
    overturned = decided(other, label="safe", score=0.9)
    rejected = decided(other, label="harmful", category="hate", score=0.95)
    client.force_login(admin_user)

    def shown(**query):
        response = client.get(reverse("reviews:decisions"), query)
        assert response.status_code == 200, response.content
        return {row[0].pk for row in response.context["rows"]}

    assert shown() == {agreed.pk, overturned.pk, rejected.pk}
    assert shown(moderator="other-mod") == {overturned.pk, rejected.pk}
    assert shown(overturned="yes") == {overturned.pk}
    assert shown(overturned="no") == {agreed.pk, rejected.pk}
    assert shown(label="harmful") == {rejected.pk}
    assert shown(category="hate") == {rejected.pk}
    today = timezone.localdate()
    assert shown(date_from=today.isoformat(), date_to=today.isoformat()) == {agreed.pk, overturned.pk, rejected.pk}
    assert shown(date_to=(today - timedelta(days=1)).isoformat()) == set()


@pytest.mark.django_db
def test_bad_filters_are_a_400_with_a_message(client, admin_user):
    client.force_login(admin_user)
    response = client.get(reverse("reviews:decisions"), {"date_from": "2026-05-02", "date_to": "2026-05-01"})
    assert response.status_code == 400
    assert "The start date is after the end date." in response.content.decode()
    response = client.get(reverse("reviews:decisions"), {"moderator": "nobody", "date_from": "soon"})
    assert response.status_code == 400
    body = response.content.decode()
    assert "Select a valid choice" in body and "Enter a valid date." in body


@pytest.mark.django_db
def test_undone_decisions_take_no_row_and_show_under_the_standing_one(client, moderator):
    first = decided(moderator, label="harmful")
    again = decision_create(round_id=decision_undo(moderator=moderator).pk, moderator=moderator, label="safe")
    client.force_login(moderator)
    response = client.get(reverse("reviews:decisions"))
    rows = response.context["rows"]
    assert [(d.pk, [u.pk for u in undone]) for d, _, undone in rows] == [(again.pk, [first.pk])]
    assert "undone" in response.content.decode()
    response = client.get(reverse("reviews:decisions"), {"state": "undone"})
    assert [d.pk for d, _, _ in response.context["rows"]] == [first.pk]


@pytest.mark.django_db
def test_the_page_is_paginated_keeping_the_filters(client, moderator):
    for _ in range(27):
        decided(moderator, label="safe")
    client.force_login(moderator)
    response = client.get(reverse("reviews:decisions"), {"label": "safe"})
    assert len(response.context["rows"]) == 25
    assert "?label=safe&amp;page=2" in response.content.decode()
    assert len(client.get(reverse("reviews:decisions"), {"label": "safe", "page": 2}).context["rows"]) == 2


@pytest.mark.django_db
def test_changing_an_old_decision_reopens_it_for_its_moderator(client, moderator):
    old = decided(moderator, label="harmful")
    for _ in range(UNDO_DEPTH):
        decided(moderator)
    client.force_login(moderator)
    response = client.post(reverse("reviews:decision_change", args=[old.pk]))
    round_ = ReviewRound.objects.get(upload=old.upload_id, status="open")
    assert response.status_code == 302 and response.url == reverse("reviews:round", args=[round_.pk])
    assert (round_.reason, round_.claimed_by) == ("reopen", moderator)
    page = client.get(response.url)
    assert page.context["holds"] and "Reopened by a person" in page.content.decode()


@pytest.mark.django_db
def test_a_moderator_cannot_change_another_moderators_decision(client, moderator):
    other = make_user(Role.MODERATOR, username="other-mod")
    theirs = decided(other, label="harmful")
    client.force_login(moderator)
    response = client.post(reverse("reviews:decision_change", args=[theirs.pk]), follow=True)
    assert "No such decision among those you can see." in response.content.decode()
    assert not ReviewRound.objects.filter(status="open").exists()


@pytest.mark.django_db
def test_an_admin_reopens_an_upload_from_its_page_and_sees_every_round(client, moderator, admin_user):
    decision = decided(moderator, label="harmful", category="weapon", note="clear case")
    client.force_login(admin_user)
    page = client.get(reverse("moderation:upload", args=[decision.upload_id])).content.decode()
    assert 'id="reopen-form"' in page and "Round 1" in page and "clear case" in page
    url = reverse("reviews:upload_reopen", args=[decision.upload_id])
    response = client.post(url, {"note": ""}, follow=True)
    assert "Say why the image is reopened." in response.content.decode()
    response = client.post(url, {"note": "platform report"}, follow=True)
    body = response.content.decode()
    assert "round 2 waits in the review queue" in body
    assert "Round 2" in body and "platform report" in body and 'id="reopen-form"' not in body
    round_ = ReviewRound.objects.get(upload=decision.upload_id, status="open")
    assert (round_.reason, round_.reopened_by, round_.claimed_by) == ("reopen", admin_user, None)
    assert Upload.objects.get(pk=decision.upload_id).status == "rejected"


@pytest.mark.django_db
def test_only_admins_reopen_and_uploaders_see_no_history(client, moderator, uploader):
    decision = decided(moderator, label="harmful")
    client.force_login(moderator)
    assert client.post(reverse("reviews:upload_reopen", args=[decision.upload_id]), {"note": "x"}).status_code == 403
    page = client.get(reverse("moderation:upload", args=[decision.upload_id])).content.decode()
    assert "Review history" in page and 'id="reopen-form"' not in page
    assert not ReviewRound.objects.filter(status="open").exists()
    own = make_upload(uploader)
    client.force_login(uploader)
    assert "Review history" not in client.get(reverse("moderation:upload", args=[own.pk])).content.decode()


@pytest.mark.django_db
def test_the_review_page_lists_recent_decisions_with_thumbnails_and_ids(client, moderator):
    first = decided(moderator, label="harmful")
    decision_create(round_id=decision_undo(moderator=moderator).pk, moderator=moderator, label="safe")
    shown = decided(moderator)
    current = make_round()
    client.force_login(moderator)
    response = client.get(reverse("reviews:round", args=[current.pk]))
    recent = response.context["recent"]
    assert first.pk not in {d.pk for d in recent} and len(recent) == 2  # the undone one takes no slot
    body = response.content.decode()
    assert str(shown.upload_id)[:8] in body and f"/uploads/{shown.upload_id}/image" in body


@pytest.mark.django_db
def test_the_queue_page_offers_undo_after_the_queue_ran_out(client, moderator):
    decision = decided(moderator, label="safe")
    client.force_login(moderator)
    body = client.get(reverse("reviews:queue")).content.decode()
    assert 'id="undo-form"' in body and str(decision.upload_id)[:8] in body
    response = client.post(reverse("reviews:undo"))
    round_ = ReviewRound.objects.get(upload=decision.upload_id, status="open")
    assert response.url == reverse("reviews:round", args=[round_.pk])


@pytest.mark.django_db
def test_undo_from_the_grid_returns_to_the_grid_with_the_image_held(client, moderator):
    decision = decided(moderator, label="safe")
    client.force_login(moderator)
    response = client.post(reverse("reviews:undo") + "?ordering=score_asc", {"then": "grid"})
    assert response.url == reverse("reviews:grid") + "?ordering=score_asc"
    grid = client.get(response.url)
    assert [r.upload_id for r in grid.context["rounds"]] == [decision.upload_id]


@pytest.mark.django_db
def test_approving_an_automatic_reject_without_a_look_is_refused_on_the_page(client, moderator):
    upload = make_upload()
    Upload.objects.filter(pk=upload.pk).update(status="rejected", decided_by="auto", decided_at=timezone.now())
    upload.refresh_from_db()
    round_ = round_claim(round_id=round_open(upload=upload, reason="audit").pk, moderator=moderator)
    client.force_login(moderator)
    assert "data-needs-reveal" in client.get(reverse("reviews:round", args=[round_.pk])).content.decode()
    url = reverse("reviews:decide", args=[round_.pk])
    response = client.post(url, {"label": "safe", "revealed": ""})
    assert response.status_code == 400 and "Reveal it (r) before approving" in response.content.decode()
    assert not Decision.objects.exists()
    client.post(url, {"label": "safe", "revealed": "", "confirmed_unrevealed": "on"})
    assert Decision.objects.get().revealed is False
    assert Upload.objects.get(pk=upload.pk).status == "approved"
