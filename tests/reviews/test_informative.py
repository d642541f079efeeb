"""The "most informative first" ordering: rounds where a shadow model disagrees most with the
routing one come first, then the most uncertain; with no shadow model it is the uncertain order."""

import logging

import pytest
from django.urls import reverse

from moderation.models import Upload
from moderation.services.policies import policy_create
from moderation.services.scoring import shadow_scores_announce
from moderation.signals import upload_shadow_scored
from reviews.disagreement import disagreement
from reviews.models import QueueSettings, ReviewRound
from reviews.selectors.queue import Ordering
from reviews.services.claims import round_release, rounds_claim
from reviews.services.reroute import queue_reroute
from reviews.services.rounds import queue_keys
from tests.factories import make_round, make_shadow_version, make_upload, route_with, score_in_shadow

pytestmark = pytest.mark.django_db

# The default policy's weapon band is [0.002, 0.4): its middle, the most uncertain score, is 0.201.


def queued(weapon: float) -> Upload:
    upload = route_with(make_upload(), {"weapon": weapon, "nudity": 0.0})
    assert upload.status == "queued"
    return upload


def round_of(upload: Upload) -> ReviewRound:
    return ReviewRound.objects.get(upload=upload, status="open")


def claimed_in_order(moderator, ordering: Ordering) -> list[int]:
    rounds = rounds_claim(moderator=moderator, ordering=ordering, limit=20)
    assert all(round_release(round_id=r.pk, moderator=moderator) for r in rounds)
    return [r.pk for r in rounds]


def test_without_a_shadow_model_it_is_the_most_uncertain_order(moderator):
    for weapon in (0.05, 0.2, 0.39, 0.3, 0.1):
        queued(weapon)
    make_round(reason="failed")
    assert set(ReviewRound.objects.values_list("disagreement", flat=True)) == {0.0}
    assert claimed_in_order(moderator, Ordering.INFORMATIVE) == claimed_in_order(moderator, Ordering.UNCERTAIN)


def test_a_shadow_score_sets_the_open_rounds_key_under_the_routing_policy():
    upload = queued(0.3)
    assert round_of(upload).disagreement == 0.0  # the round opens before the shadow models run
    shadow = make_shadow_version()
    score = score_in_shadow(upload, shadow, {"weapon": 0.6, "nudity": 0.0})
    expected = disagreement(upload.score.category_scores, score.category_scores, upload.policy.thresholds)
    assert expected == pytest.approx(1.3)  # the shadow would reject (0.6 ≥ 0.4): one step, gap 0.3
    assert round_of(upload).disagreement == pytest.approx(expected)
    # A later round of the same upload (an undo, a reopen) starts from the same key.
    assert queue_keys(upload)["disagreement"] == pytest.approx(expected)


def test_the_largest_disagreement_of_several_shadow_models_counts():
    upload = queued(0.3)
    score_in_shadow(upload, make_shadow_version("shadow-a"), {"weapon": 0.32, "nudity": 0.0})
    score_in_shadow(upload, make_shadow_version("shadow-b"), {"weapon": 0.15, "nudity": 0.0})
    assert round_of(upload).disagreement == pytest.approx(0.15)


def test_the_most_disagreed_round_is_claimed_first_then_the_most_uncertain(moderator):
    shadow = make_shadow_version()
    agrees = queued(0.2)  # the most uncertain score, and the shadow model agrees
    score_in_shadow(agrees, shadow, {"weapon": 0.203, "nudity": 0.0})  # a gap under a step: a tie at 0
    differs = queued(0.3)
    score_in_shadow(differs, shadow, {"weapon": 0.1, "nudity": 0.0})  # both queue, 0.2 apart
    crosses = queued(0.35)
    score_in_shadow(crosses, shadow, {"weapon": 0.6, "nudity": 0.0})  # the shadow would reject it
    unseen = queued(0.05)  # opened before the shadow model ran: no shadow score
    failed = make_round(reason="failed")  # no score at all: most uncertain

    keys = {r.upload_id: r.disagreement for r in ReviewRound.objects.all()}
    assert keys[crosses.pk] == pytest.approx(1.25) and keys[differs.pk] == pytest.approx(0.2)
    assert keys[agrees.pk] == keys[unseen.pk] == keys[failed.upload_id] == 0.0
    by_upload = {r.pk: r.upload_id for r in ReviewRound.objects.all()}
    order = [by_upload[pk] for pk in claimed_in_order(moderator, Ordering.INFORMATIVE)]
    assert order == [crosses.pk, differs.pk, failed.upload_id, agrees.pk, unseen.pk]
    # Most uncertain first would have served the two disagreements last but one.
    uncertain = [by_upload[pk] for pk in claimed_in_order(moderator, Ordering.UNCERTAIN)]
    assert uncertain == [failed.upload_id, agrees.pk, differs.pk, crosses.pk, unseen.pk]

    [first] = rounds_claim(moderator=moderator, ordering=Ordering.INFORMATIVE)
    assert first.upload_id == crosses.pk and first.claimed_by == moderator


def test_an_audited_approval_the_shadow_model_would_reject_comes_first(moderator):
    QueueSettings.objects.update_or_create(pk=1, defaults={"audit_approved_rate": 1.0})
    shadow = make_shadow_version()
    in_band = queued(0.3)
    score_in_shadow(in_band, shadow, {"weapon": 0.6, "nudity": 0.0})
    approved = route_with(make_upload(), {"weapon": 0.001, "nudity": 0.0})
    assert (approved.status, round_of(approved).reason) == ("approved", "audit")
    score_in_shadow(approved, shadow, {"weapon": 0.5, "nudity": 0.0})
    assert round_of(approved).disagreement == pytest.approx(2.5)  # approve against reject: two steps
    [first] = rounds_claim(moderator=moderator, ordering=Ordering.INFORMATIVE)
    assert first.upload_id == approved.pk


def test_a_decided_round_keeps_its_key_and_a_late_shadow_score_changes_nothing_closed():
    upload = queued(0.3)
    ReviewRound.objects.filter(upload=upload).update(status="cancelled", closed_at=upload.created_at)
    score_in_shadow(upload, make_shadow_version(), {"weapon": 0.9, "nudity": 0.0})
    assert ReviewRound.objects.get(upload=upload).disagreement == 0.0


def test_a_reroute_recomputes_the_key_under_the_new_policy(admin_user):
    upload = queued(0.3)
    score_in_shadow(upload, make_shadow_version(), {"weapon": 0.6, "nudity": 0.0})
    assert round_of(upload).disagreement == pytest.approx(1.3)
    wider = {
        "weapon": {"approve_below": 0.002, "reject_from": 0.7},
        "nudity": {"approve_below": 0.2, "reject_from": 0.8},
    }
    queue_reroute(policy=policy_create(thresholds=wider, reason="wider band", created_by=admin_user))
    assert round_of(upload).disagreement == pytest.approx(0.3)  # both queue under the new policy


def test_a_failing_receiver_of_shadow_scores_is_logged_not_raised(caplog):
    upload = queued(0.3)

    def broken(sender, **kwargs):
        raise RuntimeError("receiver broke")

    upload_shadow_scored.connect(broken, dispatch_uid="test.broken")
    try:
        with caplog.at_level(logging.ERROR, logger="moderation.services.scoring"):
            score = score_in_shadow(upload, make_shadow_version(), {"weapon": 0.6, "nudity": 0.0})
    finally:
        upload_shadow_scored.disconnect(dispatch_uid="test.broken")
    assert "a receiver of its shadow scores failed" in caplog.text
    assert round_of(upload).disagreement == pytest.approx(1.3)  # the queue's receiver still ran
    shadow_scores_announce(upload=upload, scores=[])  # nothing stored: nothing sent
    assert score.pk


def test_the_queue_page_offers_it_and_next_serves_the_most_disagreed_round(client, moderator):
    shadow = make_shadow_version()
    queued(0.2)
    crosses = queued(0.35)
    score_in_shadow(crosses, shadow, {"weapon": 0.6, "nudity": 0.0})
    client.force_login(moderator)
    page = client.get(reverse("reviews:queue"), {"ordering": "informative"})
    assert page.status_code == 200
    assert '<option value="informative" selected>Most informative first (helps retraining)</option>' in (
        page.content.decode()
    )
    assert "models disagree 1.25" in page.content.decode()
    response = client.get(reverse("reviews:next"), {"ordering": "informative"})
    assert response.url == reverse("reviews:round", args=[round_of(crosses).pk]) + "?ordering=informative"


@pytest.mark.django_db(transaction=True)
def test_the_migration_gives_open_rounds_already_scored_in_shadow_their_key():
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    from moderation.models import Score

    shadowed, alone = queued(0.3), queued(0.35)
    shadow = make_shadow_version()
    Score.objects.create(  # scored in shadow before the key existed: nothing announced it
        upload=shadowed,
        model_version=shadow,
        harmful_score=0.6,
        category_scores={"weapon": 0.6, "nudity": 0.0},
        latency_ms=1.0,
    )
    executor = MigrationExecutor(connection)
    executor.migrate([("reviews", "0007_reopen_and_revealed")])
    try:
        executor = MigrationExecutor(connection)  # the graph again, from the database's state
        executor.migrate([("reviews", "0008_round_disagreement")])
        assert round_of(shadowed).disagreement == pytest.approx(1.3)
        assert round_of(alone).disagreement == 0.0
    finally:  # back to the latest schema (later migrations too), for the tests that follow
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
