import uuid

import pytest

from moderation.models import Score, Upload
from moderation.services.scoring import upload_mark_failed, upload_route
from reviews.models import QueueSettings, ReviewRound
from reviews.services.rounds import audit_sampled, queue_keys
from tests.factories import make_upload
from tests.factories import route_with as routed


def route_with(score_value: float) -> Upload:
    return routed(make_upload(), {"weapon": score_value, "nudity": 0.0})


@pytest.mark.django_db
def test_a_queued_upload_opens_a_round_with_its_queue_keys():
    upload = route_with(0.2)
    assert upload.status == "queued"
    round_ = ReviewRound.objects.get(upload=upload)
    bounds = upload.policy.thresholds["weapon"]
    middle = (bounds["approve_below"] + bounds["reject_from"]) / 2
    half = (bounds["reject_from"] - bounds["approve_below"]) / 2
    assert (round_.number, round_.reason, round_.status, round_.category) == (1, "model", "open", "weapon")
    assert round_.harmful_score == 0.2
    assert round_.uncertainty == pytest.approx(abs(0.2 - middle) / half)
    assert (round_.source, round_.uploaded_at) == (upload.submitter, upload.created_at)


@pytest.mark.django_db
def test_a_failed_upload_opens_a_round_that_counts_as_most_uncertain():
    upload = make_upload()
    assert upload_mark_failed(upload_id=upload.pk, reason="Could not be scored: broken")
    round_ = ReviewRound.objects.get(upload=upload)
    assert (round_.reason, round_.harmful_score, round_.uncertainty) == ("failed", None, 0.0)


@pytest.mark.django_db
def test_routing_twice_opens_one_round():
    upload = route_with(0.2)
    score = upload.score
    assert not upload_route(upload=upload, score=score)  # no longer pending: nothing happens
    assert ReviewRound.objects.filter(upload=upload).count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(("value", "setting"), [(0.001, "audit_approved_rate"), (0.99, "audit_rejected_rate")])
def test_automatic_decisions_are_sampled_for_audit_at_the_configured_rate(value, setting):
    assert route_with(value).status in ("approved", "rejected")
    assert not ReviewRound.objects.exists()  # rate 0 in tests
    QueueSettings.objects.update_or_create(pk=1, defaults={setting: 1.0})
    upload = route_with(value)
    round_ = ReviewRound.objects.get(upload=upload)
    assert round_.reason == "audit"
    # The upload keeps the model's decision until a human says otherwise.
    upload.refresh_from_db()
    assert upload.decided_by == "auto"


def test_audit_sample_is_reproducible_and_close_to_the_rate():
    ids = [uuid.UUID(int=i * 7919 + 13) for i in range(20000)]

    class Fake:
        def __init__(self, pk):
            self.pk = pk

    picked = [audit_sampled(Fake(pk), 0.05) for pk in ids]
    assert picked == [audit_sampled(Fake(pk), 0.05) for pk in ids]
    assert 0.045 < sum(picked) / len(ids) < 0.055
    assert not any(audit_sampled(Fake(pk), 0.0) for pk in ids[:100])
    assert all(audit_sampled(Fake(pk), 1.0) for pk in ids[:100])


@pytest.mark.django_db
def test_queue_keys_without_thresholds_for_the_category_use_the_middle():
    upload = route_with(0.2)
    Upload.objects.filter(pk=upload.pk).update(policy=None)
    upload.refresh_from_db()
    Score.objects.filter(pk=upload.score_id).update(category_scores={"gore": 0.8})
    upload.refresh_from_db()
    keys = queue_keys(upload)
    assert (keys["category"], keys["uncertainty"]) == ("gore", pytest.approx(0.6))


@pytest.mark.django_db
def test_the_queue_settings_row_starts_from_the_environment_settings(settings):
    settings.VIGIL_AUDIT_APPROVED_RATE = 0.125
    settings.VIGIL_LEASE_SECONDS = 300
    row = QueueSettings.load()
    assert (row.pk, row.audit_approved_rate, row.lease_seconds) == (1, 0.125, 300)
    settings.VIGIL_AUDIT_APPROVED_RATE = 0.5
    assert QueueSettings.load().audit_approved_rate == 0.125  # the row, once saved, is what counts
