from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.roles import Role
from moderation.models import Upload
from moderation.services.scoring import upload_score
from reviews.models import Decision, QueueSettings, ReviewRound
from reviews.services.claims import round_claim, rounds_claim
from reviews.services.decisions import (
    UNDO_DEPTH,
    DecisionConflict,
    decision_create,
    decision_undo,
    decisions_create_many,
)
from reviews.services.rounds import round_open
from tests.factories import make_round, make_upload, make_user


def held(moderator, **kwargs) -> ReviewRound:
    round_ = make_round(**kwargs)
    return round_claim(round_id=round_.pk, moderator=moderator)


@pytest.mark.django_db
@pytest.mark.parametrize(("label", "status"), [("safe", "approved"), ("harmful", "rejected")])
def test_decision_closes_the_round_and_finishes_the_upload(moderator, label, status):
    round_ = held(moderator, score=0.6)
    decision = decision_create(
        round_id=round_.pk, moderator=moderator, label=label, category="weapon", note="looked", time_spent_ms=1500
    )
    upload = Upload.objects.get(pk=round_.upload_id)
    assert (upload.status, upload.decided_by) == (status, "human")
    assert upload.decided_at is not None
    round_.refresh_from_db()
    assert round_.status == "decided" and round_.closed_at is not None
    assert (decision.round, decision.label, decision.moderator, decision.note, decision.time_spent_ms) == (
        round_,
        label,
        moderator,
        "looked",
        1500,
    )
    # A category only belongs to a reject.
    assert decision.category == ("weapon" if label == "harmful" else "")
    assert (decision.upload_status_before, decision.model_score) == ("queued", 0.6)


@pytest.mark.django_db
@pytest.mark.slow
def test_decision_keeps_the_model_score_and_version(moderator):
    from tests.images import photo_jpeg

    upload = make_upload(data=photo_jpeg("astronaut"))
    upload_score(upload_id=upload.pk)
    upload.refresh_from_db()
    opened = ReviewRound.objects.filter(upload=upload, status="open").first() or make_round(upload)
    round_ = round_claim(round_id=opened.pk, moderator=moderator)
    decision = decision_create(round_id=round_.pk, moderator=moderator, label="safe")
    assert decision.model_version == upload.score.model_version
    assert decision.model_score == upload.score.harmful_score
    assert decision.model_category_scores == upload.score.category_scores


@pytest.mark.django_db
def test_a_round_takes_one_decision_even_when_asked_twice(moderator):
    round_ = held(moderator)
    decision_create(round_id=round_.pk, moderator=moderator, label="safe")
    with pytest.raises(DecisionConflict, match="already decided"):
        decision_create(round_id=round_.pk, moderator=moderator, label="harmful")
    assert Upload.objects.get(pk=round_.upload_id).status == "approved"
    assert Decision.objects.count() == 1


@pytest.mark.django_db
def test_the_database_refuses_a_second_decision_for_a_round(moderator):
    round_ = held(moderator)
    decision = decision_create(round_id=round_.pk, moderator=moderator, label="safe")
    with pytest.raises(IntegrityError), transaction.atomic():
        Decision.objects.create(
            upload_id=round_.upload_id,
            round=round_,
            moderator=moderator,
            label="harmful",
            upload_status_before="queued",
        )
    assert list(Decision.objects.all()) == [decision]


@pytest.mark.django_db
def test_the_database_refuses_two_open_rounds_for_one_upload():
    round_ = make_round()
    with pytest.raises(IntegrityError), transaction.atomic():
        round_open(upload=round_.upload, reason="audit")
    assert ReviewRound.objects.filter(upload=round_.upload).count() == 1


@pytest.mark.django_db
def test_deciding_without_holding_the_round_is_refused_with_the_holder_named(moderator):
    other = make_user(Role.MODERATOR, username="other-mod")
    round_ = held(other)
    with pytest.raises(DecisionConflict, match="other-mod is reviewing it now"):
        decision_create(round_id=round_.pk, moderator=moderator, label="harmful")
    assert not Decision.objects.exists()
    assert Upload.objects.get(pk=round_.upload_id).status == "queued"


@pytest.mark.django_db
def test_a_lost_lease_refuses_the_decision(moderator):
    other = make_user(Role.MODERATOR, username="quick")
    round_ = held(moderator)
    ReviewRound.objects.filter(pk=round_.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert [r.pk for r in rounds_claim(moderator=other)] == [round_.pk]
    with pytest.raises(DecisionConflict, match="claim on this image expired and quick is reviewing"):
        decision_create(round_id=round_.pk, moderator=moderator, label="safe")
    decision_create(round_id=round_.pk, moderator=other, label="harmful")
    assert Decision.objects.get().moderator == other


@pytest.mark.django_db
def test_an_expired_lease_nobody_took_still_counts(moderator):
    round_ = held(moderator)
    ReviewRound.objects.filter(pk=round_.pk).update(lease_expires_at=timezone.now() - timedelta(minutes=10))
    decision_create(round_id=round_.pk, moderator=moderator, label="safe")
    assert Upload.objects.get(pk=round_.upload_id).status == "approved"


@pytest.mark.django_db
def test_failed_uploads_are_decided_like_queued_ones(moderator):
    round_ = held(moderator, reason="failed")
    decision = decision_create(round_id=round_.pk, moderator=moderator, label="harmful", category="other")
    assert decision.upload_status_before == "failed"
    assert Upload.objects.get(pk=round_.upload_id).status == "rejected"


@pytest.mark.django_db
def test_unknown_label_is_refused_and_changes_nothing(moderator):
    round_ = held(moderator)
    with pytest.raises(ValueError):
        decision_create(round_id=round_.pk, moderator=moderator, label="maybe")
    round_.refresh_from_db()
    assert round_.status == "open"
    assert Upload.objects.get(pk=round_.upload_id).status == "queued"


@pytest.mark.django_db
def test_undo_reopens_the_item_for_the_same_moderator_and_keeps_the_decision(moderator):
    round_ = held(moderator, score=0.55)
    decision = decision_create(round_id=round_.pk, moderator=moderator, label="harmful", category="weapon")
    reopened = decision_undo(moderator=moderator)
    upload = Upload.objects.get(pk=round_.upload_id)
    assert (upload.status, upload.decided_by, upload.decided_at) == ("queued", "", None)
    round_.refresh_from_db()
    assert round_.status == "undone"
    assert (reopened.number, reopened.reason, reopened.reopened_from, reopened.claimed_by) == (
        2,
        "model",
        round_,
        moderator,
    )
    assert reopened.lease_expires_at > timezone.now()
    assert Decision.objects.get() == decision  # append-only: the undone decision stays on record
    again = decision_create(round_id=reopened.pk, moderator=moderator, label="safe")
    assert Upload.objects.get(pk=round_.upload_id).status == "approved"
    assert again.round == reopened


@pytest.mark.django_db
def test_undo_of_an_audit_restores_the_automatic_decision(moderator):
    upload = make_upload()
    routed = timezone.now() - timedelta(hours=1)
    Upload.objects.filter(pk=upload.pk).update(
        status="approved", decided_by="auto", routed_at=routed, decided_at=routed
    )
    upload.refresh_from_db()
    round_ = round_claim(round_id=round_open(upload=upload, reason="audit").pk, moderator=moderator)
    decision_create(round_id=round_.pk, moderator=moderator, label="harmful", category="nudity")
    upload.refresh_from_db()
    assert (upload.status, upload.decided_by) == ("rejected", "human")
    decision_undo(moderator=moderator)
    upload.refresh_from_db()
    assert (upload.status, upload.decided_by, upload.decided_at) == ("approved", "auto", routed)


@pytest.mark.django_db
def test_only_the_last_ten_decisions_can_be_undone(moderator):
    decisions = []
    for _ in range(UNDO_DEPTH + 1):
        round_ = held(moderator)
        decisions.append(decision_create(round_id=round_.pk, moderator=moderator, label="safe"))
    with pytest.raises(DecisionConflict, match="last 10"):
        decision_undo(moderator=moderator, decision_id=decisions[0].pk)
    decision_undo(moderator=moderator, decision_id=decisions[1].pk)
    assert Upload.objects.get(pk=decisions[1].upload_id).status == "queued"


@pytest.mark.django_db
def test_undo_walks_back_one_decision_at_a_time(moderator):
    first = decision_create(round_id=held(moderator).pk, moderator=moderator, label="safe")
    second = decision_create(round_id=held(moderator).pk, moderator=moderator, label="safe")
    assert decision_undo(moderator=moderator).upload_id == second.upload_id
    assert decision_undo(moderator=moderator).upload_id == first.upload_id
    with pytest.raises(DecisionConflict, match="Nothing to undo"):
        decision_undo(moderator=moderator)


@pytest.mark.django_db
def test_a_moderator_cannot_undo_anothers_decision(moderator):
    other = make_user(Role.MODERATOR)
    decision = decision_create(round_id=held(other).pk, moderator=other, label="safe")
    with pytest.raises(DecisionConflict):
        decision_undo(moderator=moderator, decision_id=decision.pk)
    assert Upload.objects.get(pk=decision.upload_id).status == "approved"


@pytest.mark.django_db
def test_second_review_goes_to_someone_else_and_the_latest_decision_stands(moderator):
    QueueSettings.objects.update_or_create(pk=1, defaults={"second_review_rejects": True})
    second_moderator = make_user(Role.MODERATOR)
    first = decision_create(round_id=held(moderator).pk, moderator=moderator, label="harmful", category="weapon")
    second = ReviewRound.objects.get(upload=first.upload, status="open")
    assert (second.reason, second.number, second.excluded_moderator) == ("second", 2, moderator)
    assert Upload.objects.get(pk=first.upload_id).status == "rejected"
    assert rounds_claim(moderator=moderator) == []
    assert [r.pk for r in rounds_claim(moderator=second_moderator)] == [second.pk]
    decision_create(round_id=second.pk, moderator=second_moderator, label="safe")
    assert Upload.objects.get(pk=first.upload_id).status == "approved"
    # A second review's reject does not start a third round; an approval never asks for one.
    assert not ReviewRound.objects.filter(status="open").exists()
    # Once someone else decided again, the first moderator can no longer undo.
    with pytest.raises(DecisionConflict, match="reviewed again"):
        decision_undo(moderator=moderator, decision_id=first.pk)


@pytest.mark.django_db
def test_undo_before_the_second_review_starts_cancels_it(moderator):
    QueueSettings.objects.update_or_create(pk=1, defaults={"second_review_rejects": True})
    first = decision_create(round_id=held(moderator).pk, moderator=moderator, label="harmful")
    decision_undo(moderator=moderator)
    statuses = list(ReviewRound.objects.filter(upload=first.upload).order_by("number").values_list("status", flat=True))
    assert statuses == ["undone", "cancelled", "open"]


@pytest.mark.django_db
def test_bulk_decisions_keep_going_past_a_lost_item(moderator):
    rounds = [held(moderator) for _ in range(3)]
    other = make_user(Role.MODERATOR)
    ReviewRound.objects.filter(pk=rounds[1].pk).update(claimed_by=other)
    result = decisions_create_many(round_ids=[r.pk for r in rounds], moderator=moderator, label="safe")
    assert [d.round_id for d in result.decided] == [rounds[0].pk, rounds[2].pk]
    assert len(result.conflicts) == 1
    assert Upload.objects.get(pk=rounds[1].upload_id).status == "queued"
