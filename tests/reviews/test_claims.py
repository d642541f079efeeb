from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.roles import Role
from reviews.models import QueueSettings, ReviewRound
from reviews.selectors.queue import Ordering, QueueFilters, queue_counts
from reviews.services.claims import ClaimUnavailable, round_claim, round_release, round_renew, rounds_claim
from tests.factories import make_round, make_upload, make_user


@pytest.mark.django_db
def test_a_claim_leases_the_round_for_the_configured_time(moderator):
    QueueSettings.objects.update_or_create(pk=1, defaults={"lease_seconds": 90})
    round_ = make_round()
    before = timezone.now()
    [claimed] = rounds_claim(moderator=moderator)
    assert (claimed.pk, claimed.claimed_by) == (round_.pk, moderator)
    assert before + timedelta(seconds=89) < claimed.lease_expires_at <= timezone.now() + timedelta(seconds=90)


@pytest.mark.django_db
def test_two_moderators_get_different_rounds_and_a_reload_keeps_yours(moderator):
    first, second = make_round(), make_round()
    other = make_user(Role.MODERATOR)
    [mine] = rounds_claim(moderator=moderator, ordering=Ordering.OLDEST)
    [theirs] = rounds_claim(moderator=other, ordering=Ordering.OLDEST)
    assert (mine.pk, theirs.pk) == (first.pk, second.pk)
    assert [r.pk for r in rounds_claim(moderator=moderator, ordering=Ordering.OLDEST)] == [first.pk]
    assert rounds_claim(moderator=make_user(Role.MODERATOR)) == []


@pytest.mark.django_db
def test_an_expired_lease_returns_the_round_to_the_queue(moderator):
    round_ = make_round()
    rounds_claim(moderator=moderator)
    other = make_user(Role.MODERATOR)
    assert rounds_claim(moderator=other) == []
    ReviewRound.objects.filter(pk=round_.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert [r.pk for r in rounds_claim(moderator=other)] == [round_.pk]
    with pytest.raises(ClaimUnavailable, match="lost"):
        round_renew(round_id=round_.pk, moderator=moderator)


@pytest.mark.django_db
def test_renewal_extends_the_lease(moderator):
    round_ = make_round()
    rounds_claim(moderator=moderator)
    ReviewRound.objects.filter(pk=round_.pk).update(lease_expires_at=timezone.now() + timedelta(seconds=5))
    renewed = round_renew(round_id=round_.pk, moderator=moderator)
    assert renewed.lease_expires_at > timezone.now() + timedelta(seconds=60)


@pytest.mark.django_db
def test_claiming_a_given_round_refuses_while_someone_else_holds_it(moderator):
    round_ = make_round()
    holder = make_user(Role.MODERATOR, username="holder")
    round_claim(round_id=round_.pk, moderator=holder)
    with pytest.raises(ClaimUnavailable, match="holder is reviewing"):
        round_claim(round_id=round_.pk, moderator=moderator)
    round_release(round_id=round_.pk, moderator=holder)
    assert round_claim(round_id=round_.pk, moderator=moderator).claimed_by == moderator


@pytest.mark.django_db
def test_orderings_serve_the_queue_in_the_asked_order(moderator):
    # Default policy band for weapon is [approve_below, reject_from); scores inside it are queued.
    low, middle, high = make_round(score=0.31), make_round(score=0.5), make_round(score=0.69)
    failed = make_round(reason="failed")
    old = timezone.now() - timedelta(days=2)
    ReviewRound.objects.filter(pk=high.pk).update(uploaded_at=old)

    def order(ordering):
        rounds = rounds_claim(moderator=moderator, ordering=ordering, limit=10)
        assert all(round_release(round_id=r.pk, moderator=moderator) for r in rounds)
        return [r.pk for r in rounds]

    assert order(Ordering.SCORE_DESC) == [failed.pk, high.pk, middle.pk, low.pk]
    assert order(Ordering.SCORE_ASC) == [low.pk, middle.pk, high.pk, failed.pk]
    assert order(Ordering.OLDEST)[0] == high.pk
    uncertain = order(Ordering.UNCERTAIN)
    assert uncertain.index(failed.pk) == 0
    keys = {r.pk: r.uncertainty for r in ReviewRound.objects.all()}
    assert [keys[pk] for pk in uncertain] == sorted(keys.values())


@pytest.mark.django_db
def test_filters_narrow_what_is_claimed_and_counted(moderator):
    api_user = make_user(username="platform-a")
    a = make_round(make_upload(api_user), score=0.6)
    make_round(score=0.35)
    make_round(reason="failed")
    filters = QueueFilters(score_min=0.5, source="platform-a")
    counts = queue_counts(filters=filters)
    assert (counts.waiting, counts.matching, counts.by_reason["failed"], counts.in_review) == (3, 1, 1, 0)
    assert [r.pk for r in rounds_claim(moderator=moderator, filters=filters, limit=5)] == [a.pk]
    assert queue_counts().in_review == 1
    assert rounds_claim(moderator=moderator, filters=QueueFilters(category="nudity")) == []
    old = QueueFilters(older_than_hours=1)
    assert rounds_claim(moderator=moderator, filters=old) == []


@pytest.mark.django_db
def test_skipped_rounds_are_not_served_again_until_asked(moderator):
    first, second = make_round(), make_round()
    [claimed] = rounds_claim(moderator=moderator, ordering=Ordering.OLDEST)
    assert claimed.pk == first.pk
    assert round_release(round_id=first.pk, moderator=moderator)
    [following] = rounds_claim(moderator=moderator, ordering=Ordering.OLDEST, skip_ids=[first.pk])
    assert following.pk == second.pk
    assert ReviewRound.objects.get(pk=first.pk).claimed_by is None
