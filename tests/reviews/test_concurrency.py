"""Claims under real concurrency: many moderators at once on PostgreSQL, where the claim uses
``SELECT … FOR UPDATE SKIP LOCKED``. (SQLite serialises writers, so the race cannot happen there.)"""

import threading
from collections import Counter

import pytest
from django.db import connection, connections

from accounts.roles import Role
from reviews.models import Decision, ReviewRound
from reviews.services.claims import rounds_claim
from reviews.services.decisions import DecisionConflict, decision_create
from tests.factories import make_round, make_user

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL row locks"),
]


def run_threads(count: int, work) -> list:
    results: list = [None] * count
    errors: list = []
    barrier = threading.Barrier(count)

    def body(index: int) -> None:
        try:
            barrier.wait()
            results[index] = work(index)
        except Exception as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=body, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    return results


def test_twenty_moderators_claiming_from_a_hundred_items_get_a_hundred_distinct_items():
    rounds = [make_round(score=0.01 * (i % 40)) for i in range(100)]
    moderators = [make_user(Role.MODERATOR, username=f"m{i}") for i in range(20)]

    def claim_until_empty(index: int) -> list[int]:
        got = []
        while True:
            claimed = rounds_claim(moderator=moderators[index], skip_ids=got)
            if not claimed:
                return got
            got.append(claimed[0].pk)

    per_thread = run_threads(20, claim_until_empty)
    everything = [pk for got in per_thread for pk in got]
    assert sorted(everything) == sorted(r.pk for r in rounds)  # each item exactly once
    assert Counter(everything).most_common(1)[0][1] == 1
    holders = dict(ReviewRound.objects.values_list("pk", "claimed_by__username"))
    for index, got in enumerate(per_thread):
        assert all(holders[pk] == f"m{index}" for pk in got)


def test_batch_claims_never_overlap():
    [make_round() for _ in range(60)]
    moderators = [make_user(Role.MODERATOR, username=f"g{i}") for i in range(6)]
    per_thread = run_threads(6, lambda i: [r.pk for r in rounds_claim(moderator=moderators[i], limit=12)])
    everything = [pk for got in per_thread for pk in got]
    assert len(everything) == len(set(everything)) == 60


def test_racing_decisions_on_one_round_store_one():
    round_ = make_round()
    moderator = make_user(Role.MODERATOR)
    rounds_claim(moderator=moderator)

    def decide(index: int) -> str:
        try:
            decision_create(round_id=round_.pk, moderator=moderator, label="safe" if index % 2 else "harmful")
        except DecisionConflict:
            return "conflict"
        return "stored"

    outcomes = Counter(run_threads(10, decide))
    assert outcomes == {"stored": 1, "conflict": 9}
    assert Decision.objects.count() == 1
