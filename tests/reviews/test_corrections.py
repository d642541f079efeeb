"""Decisions you can correct: audits of automatic rejects need a look, undone decisions take no
undo slot, older decisions are changed by reopening, admins reopen any decided upload."""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.roles import Role
from moderation.models import Upload
from reviews.models import Decision, ReviewRound
from reviews.services.claims import round_claim
from reviews.services.decisions import (
    UNDO_DEPTH,
    DecisionConflict,
    RevealRequired,
    decision_create,
    decision_undo,
    decisions_create_many,
    decisions_recent,
)
from reviews.services.reopen import ReopenRefused, decision_change, upload_reopen
from reviews.services.rounds import round_open
from tests.factories import make_round, make_upload, make_user


def held(moderator, **kwargs) -> ReviewRound:
    return round_claim(round_id=make_round(**kwargs).pk, moderator=moderator)


def decided(moderator, label="safe", **kwargs) -> Decision:
    return decision_create(round_id=held(moderator, **kwargs).pk, moderator=moderator, label=label)


def audit_of(status: str, moderator) -> ReviewRound:
    upload = make_upload()
    Upload.objects.filter(pk=upload.pk).update(
        status=status, decided_by="auto", routed_at=timezone.now(), decided_at=timezone.now()
    )
    upload.refresh_from_db()
    return round_claim(round_id=round_open(upload=upload, reason="audit").pk, moderator=moderator)


@pytest.mark.django_db
def test_approving_an_automatic_reject_needs_a_reveal_or_a_confirmation(moderator):
    round_ = audit_of("rejected", moderator)
    with pytest.raises(RevealRequired, match="Reveal it"):
        decision_create(round_id=round_.pk, moderator=moderator, label="safe", revealed=False)
    round_.refresh_from_db()
    assert round_.status == "open" and not Decision.objects.exists()
    assert Upload.objects.get(pk=round_.upload_id).status == "rejected"
    decision = decision_create(round_id=round_.pk, moderator=moderator, label="safe", revealed=True)
    assert decision.revealed is True
    assert Upload.objects.get(pk=round_.upload_id).status == "approved"

    other = audit_of("rejected", moderator)
    unseen = decision_create(
        round_id=other.pk, moderator=moderator, label="safe", revealed=False, confirmed_unrevealed=True
    )
    assert unseen.revealed is False


@pytest.mark.django_db
def test_confirming_an_automatic_reject_or_an_approval_audit_needs_no_reveal(moderator):
    reject = decision_create(round_id=audit_of("rejected", moderator).pk, moderator=moderator, label="harmful")
    approve = decision_create(round_id=audit_of("approved", moderator).pk, moderator=moderator, label="safe")
    ordinary = decision_create(round_id=held(moderator).pk, moderator=moderator, label="safe", revealed=False)
    assert (reject.revealed, approve.revealed, ordinary.revealed) == (None, None, False)


@pytest.mark.django_db
def test_undone_decisions_take_no_undo_slot(moderator):
    decisions = [decided(moderator) for _ in range(UNDO_DEPTH)]
    reopened = decision_undo(moderator=moderator)
    decision_create(round_id=reopened.pk, moderator=moderator, label="harmful")
    recent = decisions_recent(moderator=moderator)
    assert len(recent) == UNDO_DEPTH
    assert all(d.round.status == "decided" for d in recent)
    assert decisions[0].pk in {d.pk for d in recent}  # the oldest is still editable
    with pytest.raises(DecisionConflict, match="already undone"):
        decision_undo(moderator=moderator, decision_id=decisions[-1].pk)


@pytest.mark.django_db
def test_grid_rejects_default_to_each_images_top_category(moderator):
    weapon = held(moderator, score=0.7)
    unknown = held(moderator)  # not scored: no top category
    result = decisions_create_many(
        round_ids=[weapon.pk, unknown.pk], moderator=moderator, label="harmful", revealed_ids=[weapon.pk]
    )
    assert [(d.category, d.revealed) for d in result.decided] == [("weapon", True), ("other", False)]


@pytest.mark.django_db
def test_grid_approval_of_automatic_rejects_needs_each_tile_revealed(moderator):
    seen, unseen = audit_of("rejected", moderator), audit_of("rejected", moderator)
    result = decisions_create_many(
        round_ids=[seen.pk, unseen.pk], moderator=moderator, label="safe", revealed_ids=[seen.pk]
    )
    assert [d.round_id for d in result.decided] == [seen.pk]
    assert len(result.conflicts) == 1 and "Reveal it" in result.conflicts[0]


@pytest.mark.django_db
def test_a_recent_decision_is_changed_by_undoing_it(moderator):
    decision = decided(moderator, label="harmful")
    round_ = decision_change(decision_id=decision.pk, actor=moderator)
    assert (round_.reason, round_.claimed_by, round_.reopened_from_id) == ("model", moderator, decision.round_id)
    assert Upload.objects.get(pk=decision.upload_id).status == "queued"


@pytest.mark.django_db
def test_an_older_decision_is_changed_by_reopening_its_upload(moderator):
    old = decided(moderator, label="harmful")
    for _ in range(UNDO_DEPTH):
        decided(moderator)
    round_ = decision_change(decision_id=old.pk, actor=moderator)
    assert (round_.reason, round_.claimed_by, round_.reopened_by) == ("reopen", moderator, moderator)
    assert f"#{old.pk}" in round_.reopen_note
    assert Upload.objects.get(pk=old.upload_id).status == "rejected"  # stands until decided again
    new = decision_create(round_id=round_.pk, moderator=moderator, label="safe")
    assert Upload.objects.get(pk=old.upload_id).status == "approved"
    assert new.upload_status_before == "rejected"
    with pytest.raises(DecisionConflict, match="decided again since"):
        decision_change(decision_id=old.pk, actor=moderator)


@pytest.mark.django_db
def test_a_moderator_cannot_change_someone_elses_decision_and_an_admin_can(moderator, admin_user):
    other = make_user(Role.MODERATOR, username="other-mod")
    decision = decided(other, label="harmful")
    with pytest.raises(DecisionConflict, match="No such decision"):
        decision_change(decision_id=decision.pk, actor=moderator)
    assert not ReviewRound.objects.filter(status="open").exists()
    round_ = decision_change(decision_id=decision.pk, actor=admin_user)
    assert (round_.reason, round_.claimed_by) == ("reopen", admin_user)


@pytest.mark.django_db
def test_an_admin_reopens_a_decided_upload_with_a_reason(admin_user):
    upload = make_upload()
    Upload.objects.filter(pk=upload.pk).update(status="approved", decided_by="auto", decided_at=timezone.now())
    with pytest.raises(ReopenRefused, match="Say why"):
        upload_reopen(upload_id=upload.pk, actor=admin_user, note="  ")
    round_ = upload_reopen(upload_id=upload.pk, actor=admin_user, note="A user complained")
    assert (round_.reason, round_.status, round_.claimed_by, round_.reopen_note) == (
        "reopen",
        "open",
        None,
        "A user complained",
    )
    with pytest.raises(ReopenRefused, match="already waiting"):
        upload_reopen(upload_id=upload.pk, actor=admin_user, note="again")


@pytest.mark.django_db
def test_an_upload_not_decided_yet_cannot_be_reopened(admin_user):
    upload = make_upload()  # pending
    with pytest.raises(ReopenRefused, match="not decided yet"):
        upload_reopen(upload_id=upload.pk, actor=admin_user, note="why not")
    assert not ReviewRound.objects.exists()


@pytest.mark.django_db
def test_a_reopened_decision_can_be_undone_back_to_the_earlier_decision(moderator):
    old = decided(moderator, label="harmful")
    round_ = upload_reopen(upload_id=old.upload_id, actor=moderator, note="check", claim=True)
    decision_create(round_id=round_.pk, moderator=moderator, label="safe")
    decision_undo(moderator=moderator)
    upload = Upload.objects.get(pk=old.upload_id)
    assert (upload.status, upload.decided_by) == ("rejected", "human")
    assert ReviewRound.objects.filter(upload=upload, status="open", reason="reopen").count() == 1
    assert timezone.now() - upload.decided_at < timedelta(minutes=1)
