from datetime import timedelta

import pgtrigger
import pytest
from django.utils import timezone

from accounts.roles import Role
from reviews.models import Decision, QueueSettings
from reviews.selectors.stats import moderator_stats
from reviews.services.claims import round_claim
from reviews.services.decisions import decision_create, decision_undo
from tests.factories import make_round, make_user


def decide(moderator, round_, label, spent_ms=None):
    round_claim(round_id=round_.pk, moderator=moderator)
    return decision_create(round_id=round_.pk, moderator=moderator, label=label, time_spent_ms=spent_ms)


@pytest.mark.django_db
def test_moderator_stats_count_rates_and_agreement():
    QueueSettings.objects.update_or_create(pk=1, defaults={"second_review_rejects": True})
    ann = make_user(Role.MODERATOR, username="ann")
    bob = make_user(Role.MODERATOR, username="bob")
    # ann: 4 decisions. Model lean (score >= 0.5 harmful): agrees on 0.9/harmful, 0.1/safe, 0.2/safe,
    # disagrees on 0.6/safe -> 3 of 4.
    r1 = make_round(score=0.9)
    first = decide(ann, r1, "harmful", 2000)  # opens a second review for bob
    decide(ann, make_round(score=0.1), "safe", 4000)
    decide(ann, make_round(score=0.2), "safe")
    decide(ann, make_round(score=0.6), "safe", 3000)
    # bob's second review disagrees with ann on the first image.
    second_round = first.upload.review_rounds.get(status="open")
    decide(bob, second_round, "safe", 1000)
    # One hour earlier ann decided another image: two active hours for her.
    old = decide(ann, make_round(score=0.3), "safe")
    with pgtrigger.ignore("reviews.Decision:decision_append_only"):  # back-date it for the test
        Decision.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(hours=1, minutes=5))

    now = timezone.now()
    rows = {r.username: r for r in moderator_stats(since=now - timedelta(days=1), until=now + timedelta(seconds=1))}
    a, b = rows["ann"], rows["bob"]
    assert (a.decisions, a.rejected, a.active_hours) == (5, 1, 2)
    assert a.per_hour == pytest.approx(2.5)
    assert a.mean_seconds == pytest.approx(3.0)  # (2 + 4 + 3) / 3 timed decisions
    assert a.model_agreement == pytest.approx(4 / 5)  # 0.3/safe agrees too
    assert (a.peer_compared, a.peer_agreement) == (1, 0.0)
    assert (b.decisions, b.model_agreement, b.peer_compared, b.peer_agreement) == (1, 0.0, 1, 0.0)


@pytest.mark.django_db
def test_undone_decisions_do_not_count_as_peer_opinions():
    QueueSettings.objects.update_or_create(pk=1, defaults={"second_review_rejects": True})
    ann = make_user(Role.MODERATOR, username="ann")
    bob = make_user(Role.MODERATOR, username="bob")
    first = decide(ann, make_round(score=0.9), "harmful")
    decide(bob, first.upload.review_rounds.get(status="open"), "harmful")
    decision_undo(moderator=bob)
    now = timezone.now()
    rows = {r.username: r for r in moderator_stats(since=now - timedelta(days=1), until=now + timedelta(seconds=1))}
    assert rows["ann"].peer_compared == 0
    assert (rows["bob"].decisions, rows["bob"].undone) == (0, 1)  # undone: shown apart, not counted


@pytest.mark.django_db
def test_stats_count_standing_decisions_and_show_undone_ones_apart(client):
    """45 decisions of which 13 undone used to show as 45: the figures are the 32 that stand."""
    ann = make_user(Role.MODERATOR, username="ann")
    for i in range(5):
        decide(ann, make_round(score=0.9), "harmful" if i < 2 else "safe", 1000 * (i + 1))
    decision_undo(moderator=ann)  # the last (safe, 5 s) is undone...
    decision_undo(moderator=ann)  # ...and the one before (safe, 4 s)
    now = timezone.now()
    [row] = moderator_stats(since=now - timedelta(days=1), until=now + timedelta(seconds=1))
    assert (row.decisions, row.undone, row.rejected, row.active_hours) == (3, 2, 2, 1)
    assert row.per_hour == pytest.approx(3.0)
    assert row.mean_seconds == pytest.approx(2.0)  # (1 + 2 + 3) / 3: the standing ones
    assert row.model_agreement == pytest.approx(2 / 3)  # harmful at 0.9 twice, safe once

    client.force_login(ann)
    page = client.get("/review/stats/").content.decode()
    assert "<th>Standing decisions</th>" in page and "<th>Undone</th>" in page
    assert "<td>3</td><td>2</td>" in page
