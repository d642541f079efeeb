"""Decide once: a picture and its near copies waiting in the queue, one decision each, one keystroke."""

from __future__ import annotations

import itertools
import random
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.roles import Role
from feedback.services.export import ExportFilters, export_rows
from feedback.services.retrain import new_labels_since_last_run
from hashes.models import HashMatch, UploadHash
from moderation.models import Upload
from reviews.models import Decision, QueueSettings, ReviewRound
from reviews.selectors.copies import round_near_copies
from reviews.selectors.stats import moderator_stats
from reviews.services.claims import round_claim
from reviews.services.decisions import (
    UNDO_DEPTH,
    DecisionConflict,
    decision_create,
    decision_undo,
    decision_undo_entry,
    decisions_recent,
)
from reviews.services.group_decisions import CLOSED, EXCLUDED, HELD, NOT_NEAR, decisions_create_group
from tests.factories import make_round, make_upload, make_user
from tests.images import solid

_colours = itertools.count(1)
BASE = f"{random.Random(7).getrandbits(256):064x}"


def flipped(pdq: str, bits: int, seed: int = 0) -> str:
    """``pdq`` with ``bits`` distinct bits flipped: exactly that many bits away."""
    value = int(pdq, 16)
    for position in random.Random(seed).sample(range(256), bits):
        value ^= 1 << position
    return f"{value:064x}"


def hashed_round(pdq: str, *, quality: int = 90, frames: int = 1, kind: str = "image", **kwargs) -> ReviewRound:
    """A queued upload with an open round and its frame-0 PDQ hash, as the worker leaves it."""
    n = next(_colours)  # distinct bytes: the export counts images by sha256
    round_ = make_round(make_upload(data=solid(color=(n * 53 % 256, n * 97 % 256, n * 29 % 256))), **kwargs)
    Upload.objects.filter(pk=round_.upload_id).update(frames=frames, kind=kind)
    UploadHash.objects.create(upload=round_.upload, frame=0, pdq=pdq, quality=quality)
    return round_


def held_lead(moderator, pdq: str = BASE, **kwargs) -> ReviewRound:
    lead = hashed_round(pdq, **kwargs)
    return round_claim(round_id=lead.pk, moderator=moderator)


def copies(n: int, **kwargs) -> list[ReviewRound]:
    return [hashed_round(flipped(BASE, 2 + i % 20, seed=i), **kwargs) for i in range(n)]


# -- who is in the group ------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_group_is_the_near_still_copies_of_the_same_kind_the_moderator_may_claim(moderator):
    other = make_user(Role.MODERATOR)
    lead = held_lead(moderator, score=0.6)
    near = [hashed_round(flipped(BASE, bits, seed=bits), score=0.6) for bits in (3, 12, 31)]
    hashed_round(flipped(BASE, 60, seed=1))  # too far
    hashed_round(flipped(BASE, 32, seed=2))  # just too far
    hashed_round(flipped(BASE, 2, seed=3), quality=49)  # a flat picture: never grouped
    hashed_round(flipped(BASE, 2, seed=4), frames=8)  # an animation: its first frame says too little
    hashed_round(flipped(BASE, 2, seed=5), kind="video", frames=40)
    hashed_round(flipped(BASE, 2, seed=6), reason="failed")  # another reason
    hashed_round(flipped(BASE, 2, seed=7), reason="audit")
    hashed_round(flipped(BASE, 2, seed=8), excluded_moderator=moderator)  # a second look by someone else
    taken = hashed_round(flipped(BASE, 2, seed=9))
    round_claim(round_id=taken.pk, moderator=other)
    expired = hashed_round(flipped(BASE, 4, seed=10))
    ReviewRound.objects.filter(pk=expired.pk).update(
        claimed_by=other, lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    mine = hashed_round(flipped(BASE, 5, seed=11))
    round_claim(round_id=mine.pk, moderator=moderator)  # held in the moderator's grid: still theirs
    make_round()  # no hash at all

    group = round_near_copies(round_=lead, moderator=moderator)

    assert [r.pk for r in group] == [near[0].pk, near[1].pk, near[2].pk, expired.pk, mine.pk]  # oldest first
    assert [r.copy_distance for r in group] == [3, 12, 31, 4, 5]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "lead_kwargs",
    [{"quality": 40}, {"frames": 3}, {"kind": "video", "frames": 10}, {"reason": "audit"}, {"reason": "second"}],
    ids=["low-quality", "animation", "video", "audit", "second-review"],
)
def test_no_group_for_a_picture_that_cannot_be_grouped(moderator, lead_kwargs):
    lead = held_lead(moderator, **lead_kwargs)
    copies(3)
    assert round_near_copies(round_=lead, moderator=moderator) == []


@pytest.mark.django_db
def test_no_hash_no_group(moderator):
    lead = round_claim(round_id=make_round().pk, moderator=moderator)
    copies(2)
    assert round_near_copies(round_=lead, moderator=moderator) == []


@pytest.mark.django_db
def test_the_group_is_capped(moderator, settings):
    settings.VIGIL_GROUP_DECISION_MAX = 4
    lead = held_lead(moderator)
    waiting = copies(6)
    group = round_near_copies(round_=lead, moderator=moderator)
    assert [r.pk for r in group] == [r.pk for r in waiting[:3]]
    result = decisions_create_group(
        round_id=lead.pk, member_ids=[r.pk for r in waiting], moderator=moderator, label="safe"
    )
    assert len(result.members) == 3 and Decision.objects.count() == 4
    assert [pk for pk, _ in result.skipped] == [r.pk for r in waiting[3:]]


# -- deciding -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_one_decision_decides_every_member_each_as_its_own_decision(moderator):
    lead = held_lead(moderator, score=0.7)
    members = copies(5, score=0.7)
    result = decisions_create_group(
        round_id=lead.pk,
        member_ids=[r.pk for r in members],
        moderator=moderator,
        label="harmful",
        category="weapon",
        note="same meme",
        time_spent_ms=2500,
        revealed=True,
    )
    decisions = list(Decision.objects.order_by("id"))
    assert len(decisions) == 6 and not result.skipped
    assert {d.group for d in decisions} == {result.group}
    assert [d.round_id for d in decisions] == [lead.pk, *(r.pk for r in members)]
    assert {(d.label, d.category, d.moderator_id) for d in decisions} == {("harmful", "weapon", moderator.pk)}
    looked, *copies_ = decisions
    assert (looked.revealed, looked.time_spent_ms, looked.note) == (True, 2500, "same meme")
    for d in copies_:
        assert (d.revealed, d.time_spent_ms) == (False, None)
        assert d.note.startswith(f"Group decision: decided with upload {lead.upload_id}") and "same meme" in d.note
        assert d.model_score == 0.7 and d.upload_status_before == "queued"
    assert set(ReviewRound.objects.filter(reason="model").values_list("status", flat=True)) == {"decided"}
    assert set(Upload.objects.values_list("status", "decided_by")) == {("rejected", "human")}


@pytest.mark.django_db
def test_a_reject_without_a_category_takes_each_members_default(moderator):
    lead = held_lead(moderator, score=0.7)
    member = copies(1, score=0.7)[0]  # the factory's top category: weapon
    decisions_create_group(round_id=lead.pk, member_ids=[member.pk], moderator=moderator, label="harmful")
    assert Decision.objects.get(round=member).category == "weapon"


@pytest.mark.django_db
def test_each_member_gets_its_own_second_review_when_rejects_are_reviewed_twice(moderator):
    QueueSettings.objects.update_or_create(pk=1, defaults={"second_review_rejects": True})
    lead = held_lead(moderator)
    members = copies(3)
    decisions_create_group(round_id=lead.pk, member_ids=[r.pk for r in members], moderator=moderator, label="harmful")
    second = ReviewRound.objects.filter(reason="second", status="open")
    assert second.count() == 4 and {r.excluded_moderator_id for r in second} == {moderator.pk}


@pytest.mark.django_db
def test_members_that_changed_since_the_page_showed_them_are_skipped_and_said_why(moderator):
    other = make_user(Role.MODERATOR)
    lead = held_lead(moderator)
    ok, decided, taken, excluded, far = copies(5)
    round_claim(round_id=decided.pk, moderator=other)
    decision_create(round_id=decided.pk, moderator=other, label="safe")
    round_claim(round_id=taken.pk, moderator=other)
    ReviewRound.objects.filter(pk=excluded.pk).update(excluded_moderator=moderator)
    UploadHash.objects.filter(upload=far.upload).delete()
    UploadHash.objects.create(upload=far.upload, frame=0, pdq=flipped(BASE, 60), quality=90)

    result = decisions_create_group(
        round_id=lead.pk,
        member_ids=[r.pk for r in (ok, decided, taken, excluded, far)] + [999_999],
        moderator=moderator,
        label="safe",
    )

    assert [d.round_id for d in result.members] == [ok.pk]
    assert dict(result.skipped) == {
        decided.pk: CLOSED,
        taken.pk: HELD,
        excluded.pk: EXCLUDED,
        far.pk: NOT_NEAR,
        999_999: "no longer exists",
    }
    assert "1 already decided" in result.skipped_summary
    assert Decision.objects.filter(moderator=moderator).count() == 2
    taken.refresh_from_db()
    assert (taken.status, taken.claimed_by_id) == ("open", other.pk)


@pytest.mark.django_db
def test_nothing_is_decided_when_the_picture_itself_is_not_held(moderator):
    other = make_user(Role.MODERATOR)
    lead = hashed_round(BASE)
    round_claim(round_id=lead.pk, moderator=other)
    members = copies(2)
    with pytest.raises(DecisionConflict, match="reviewing it now"):
        decisions_create_group(round_id=lead.pk, member_ids=[r.pk for r in members], moderator=moderator, label="safe")
    assert not Decision.objects.exists()
    assert set(ReviewRound.objects.filter(pk__in=[r.pk for r in members]).values_list("claimed_by", flat=True)) == {
        None
    }


# -- undo ---------------------------------------------------------------------------------------


def group_decided(moderator, n: int, label: str = "safe"):
    lead = held_lead(moderator)
    members = copies(n)
    return decisions_create_group(
        round_id=lead.pk, member_ids=[r.pk for r in members], moderator=moderator, label=label
    )


@pytest.mark.django_db
def test_undo_takes_back_the_whole_group(moderator):
    result = group_decided(moderator, 4)
    undone = decision_undo_entry(moderator=moderator)
    assert undone.round.upload_id == result.decision.upload_id  # the picture that was looked at, to decide again
    assert (undone.others, undone.left) == (4, [])
    assert set(ReviewRound.objects.filter(number=1).values_list("status", flat=True)) == {"undone"}
    reopened = ReviewRound.objects.filter(number=2)
    assert reopened.count() == 5 and {r.claimed_by_id for r in reopened} == {moderator.pk}
    assert set(Upload.objects.values_list("status", flat=True)) == {"queued"}
    assert Decision.objects.count() == 5  # append-only: the decisions stay, undone
    assert decisions_recent(moderator=moderator) == []
    # The reopened picture and its copies make a group again: one keystroke decides them again.
    assert len(round_near_copies(round_=undone.round, moderator=moderator)) == 4


@pytest.mark.django_db
def test_undo_leaves_members_someone_decided_since_and_says_why(moderator, admin_user):
    from reviews.services.reopen import upload_reopen

    result = group_decided(moderator, 3)
    again = upload_reopen(upload_id=result.members[0].upload_id, actor=admin_user, note="reported", claim=True)
    decision_create(round_id=again.pk, moderator=admin_user, label="harmful", category="weapon")
    undone = decision_undo_entry(moderator=moderator)
    assert undone.others == 2 and len(undone.left) == 1 and "reviewed again" in undone.left[0]
    assert Upload.objects.get(pk=result.members[0].upload_id).status == "rejected"


@pytest.mark.django_db
def test_a_group_is_one_entry_of_the_undo_depth(moderator):
    result = group_decided(moderator, 30)
    singles = []
    for _ in range(UNDO_DEPTH - 1):
        round_ = round_claim(round_id=make_round().pk, moderator=moderator)
        singles.append(decision_create(round_id=round_.pk, moderator=moderator, label="safe"))
    recent = decisions_recent(moderator=moderator)
    assert len(recent) == UNDO_DEPTH
    assert recent[-1].pk == result.decision.pk and recent[-1].group_size == 31
    assert [d.pk for d in recent[:-1]] == [d.pk for d in reversed(singles)]
    assert {d.group_size for d in recent[:-1]} == {1}
    # The group's entry undoes it from the list, as from a member's id.
    undone = decision_undo_entry(moderator=moderator, decision_id=result.members[7].pk)
    assert undone.others == 30
    # One more decision would push the group out of reach.
    round_ = round_claim(round_id=make_round().pk, moderator=moderator)
    decision_create(round_id=round_.pk, moderator=moderator, label="safe")
    assert len(decisions_recent(moderator=moderator)) == UNDO_DEPTH


@pytest.mark.django_db
def test_an_eleventh_entry_pushes_the_group_out_of_reach(moderator):
    result = group_decided(moderator, 3)
    for _ in range(UNDO_DEPTH):
        round_ = round_claim(round_id=make_round().pk, moderator=moderator)
        decision_create(round_id=round_.pk, moderator=moderator, label="safe")
    assert result.decision.pk not in [d.pk for d in decisions_recent(moderator=moderator)]
    with pytest.raises(DecisionConflict, match="Only your last"):
        decision_undo(moderator=moderator, decision_id=result.decision.pk)


# -- counting -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_metrics_and_the_export_count_members_not_groups(moderator):
    group_decided(moderator, 6, label="harmful")
    now = timezone.now()
    (row,) = moderator_stats(since=now - timedelta(hours=1), until=now + timedelta(seconds=1))
    assert (row.decisions, row.rejected) == (7, 7)
    assert new_labels_since_last_run() == 7
    rows = list(export_rows(ExportFilters()))
    assert len(rows) == 7 and {r.label for r in rows} == {"harmful"}
    decision_undo(moderator=moderator)
    (row,) = moderator_stats(since=now - timedelta(hours=1), until=now + timedelta(seconds=1))
    assert (row.decisions, row.undone) == (0, 7)


# -- the review page ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_review_page_shows_the_group_and_one_post_decides_it(client, moderator):
    lead = hashed_round(BASE, score=0.6)
    members = copies(14, score=0.6)
    hashed_round(flipped(BASE, 60))  # far: not in the group
    client.force_login(moderator)
    page = client.get(reverse("reviews:round", args=[lead.pk]))
    html = page.content.decode()
    assert page.status_code == 200
    assert "This picture and 14 near copies waiting" in html
    assert f'name="members" value="{",".join(str(r.pk) for r in members)}"' in html
    assert html.count("data-thumb") >= 12 and "and 2 more" in html
    assert "Reject all 15" in html and reverse("reviews:decide_group", args=[lead.pk]) in html
    assert "shift</kbd>+<kbd>x" in html

    response = client.post(
        reverse("reviews:decide_group", args=[lead.pk]),
        {"label": "harmful", "category": "weapon", "members": ",".join(str(r.pk) for r in members)},
    )
    assert response.status_code == 302
    assert Decision.objects.filter(label="harmful", category="weapon").count() == 15
    assert len({d.group for d in Decision.objects.all()}) == 1
    page = client.get(response.url, follow=True)
    assert "this picture and 14 near copies" in page.content.decode()

    undo = client.post(reverse("reviews:undo"), follow=True)
    again = ReviewRound.objects.get(upload=lead.upload, number=2)
    assert undo.redirect_chain[0][0] == reverse("reviews:round", args=[again.pk])
    assert "Group decision undone, with 14 near copies" in undo.content.decode()
    assert ReviewRound.objects.filter(status="undone").count() == 15


@pytest.mark.django_db
def test_a_picture_alone_shows_no_group(client, moderator):
    lead = hashed_round(BASE)
    hashed_round(flipped(BASE, 60))
    client.force_login(moderator)
    html = client.get(reverse("reviews:round", args=[lead.pk])).content.decode()
    assert "data-group-decide" not in html and "waiting</strong>" not in html and 'name="members"' not in html


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("members", "error"),
    [("", "This field is required"), ("1,x", "review round numbers"), ("1,2,3", "at most 2 near copies")],
)
def test_a_bad_group_post_is_a_400_with_a_message(client, moderator, members, error, settings):
    settings.VIGIL_GROUP_DECISION_MAX = 3
    lead = hashed_round(BASE)
    copies(1)
    client.force_login(moderator)
    client.get(reverse("reviews:round", args=[lead.pk]))
    response = client.post(reverse("reviews:decide_group", args=[lead.pk]), {"label": "safe", "members": members})
    assert response.status_code == 400 and error in response.content.decode()
    assert not Decision.objects.exists()


@pytest.mark.django_db
def test_skipped_members_are_reported_after_the_group_post(client, moderator):
    other = make_user(Role.MODERATOR)
    lead = hashed_round(BASE)
    members = copies(3)
    client.force_login(moderator)
    client.get(reverse("reviews:round", args=[lead.pk]))
    round_claim(round_id=members[1].pk, moderator=other)
    response = client.post(
        reverse("reviews:decide_group", args=[lead.pk]),
        {"label": "safe", "members": ",".join(str(r.pk) for r in members)},
        follow=True,
    )
    html = response.content.decode()
    assert "this picture and 2 near copies" in html
    assert "1 left for later: 1 being reviewed by another moderator" in html
    assert Decision.objects.count() == 3


@pytest.mark.django_db
def test_the_review_page_names_the_hash_lists_the_upload_matched(client, moderator):
    lead = hashed_round(BASE)
    HashMatch.objects.create(
        upload=lead.upload,
        list_name="industry-csam-v3",
        action="queue",
        category="csam",
        labels="tier1,verified",
        pdq=flipped(BASE, 5),
        distance=5,
    )
    HashMatch.objects.create(upload=lead.upload, list_name="team-spam", action="tag", pdq=BASE, distance=0)
    client.force_login(moderator)
    html = client.get(reverse("reviews:round", args=[lead.pk])).content.decode()
    assert "Matches hash list <strong>industry-csam-v3</strong> (csam; labels tier1,verified), 5 bits" in html
    assert "Matches hash list <strong>team-spam</strong> (no category), 0 bits" in html
    grid = client.get(reverse("reviews:grid")).content.decode()
    assert "list: team-spam +1</span>" in grid  # the nearest match names the badge; the title lists all
    assert 'title="team-spam (0 bits), industry-csam-v3 (5 bits)"' in grid


@pytest.mark.django_db
def test_only_the_holder_sees_a_group(client, moderator):
    other = make_user(Role.MODERATOR)
    lead = hashed_round(BASE)
    copies(2)
    round_claim(round_id=lead.pk, moderator=other)
    client.force_login(moderator)
    html = client.get(reverse("reviews:round", args=[lead.pk])).content.decode()
    assert "data-group-decide" not in html


@pytest.mark.django_db
def test_a_copy_a_hash_list_flagged_is_grouped_only_when_the_picture_shown_was_flagged_by_it(moderator):
    """The moderator sees the banners of the picture under review only: a copy that matched another
    list (or a list since deleted) gets a look of its own."""
    from hashes.models import HashList

    shared, other = HashList.objects.create(name="shared"), HashList.objects.create(name="other")
    lead = held_lead(moderator)
    same_list, other_list, deleted_list, plain = copies(4)

    def matched(round_, hash_list):
        name = hash_list.name if hash_list else "gone"
        HashMatch.objects.create(
            upload=round_.upload, hash_list=hash_list, list_name=name, action="queue", pdq=BASE, distance=3
        )

    matched(lead, shared)
    matched(same_list, shared)
    matched(other_list, other)
    matched(deleted_list, None)

    group = round_near_copies(round_=lead, moderator=moderator)

    assert {r.pk for r in group} == {same_list.pk, plain.pk}


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["reviews:decide", "reviews:decide_group"])
def test_a_bad_post_for_a_round_that_no_longer_exists_goes_to_the_next_item(client, moderator, name):
    """Was a 500 for a single decision (the page was drawn again for a round that is gone)."""
    client.force_login(moderator)
    response = client.post(reverse(name, args=[987654]), {"label": "nonsense"})
    assert response.status_code == 302 and response["Location"].startswith(reverse("reviews:next"))
