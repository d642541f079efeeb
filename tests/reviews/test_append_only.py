"""Audit records refuse UPDATE and DELETE in the database itself (PostgreSQL triggers from
django-pgtrigger), whatever code path tries. SQLite, the embedded default, has no such triggers."""

import pytest
from django.db import connection, transaction
from django.db.utils import ProgrammingError

from moderation.models import Change, ModelEvent, ThresholdPolicy
from moderation.services.model_versions import model_event_record, model_version_ensure_active
from moderation.services.policies import policy_create, policy_current
from reviews.models import Decision
from reviews.services.claims import round_claim
from reviews.services.decisions import decision_create
from tests.factories import make_round

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the triggers are PostgreSQL's"),
]


def refused(action) -> None:
    with pytest.raises(ProgrammingError, match="Cannot update or delete rows"), transaction.atomic():
        action()


def test_decisions_cannot_be_edited_or_deleted(moderator):
    round_ = round_claim(round_id=make_round().pk, moderator=moderator)
    decision = decision_create(round_id=round_.pk, moderator=moderator, label="harmful")
    refused(lambda: Decision.objects.filter(pk=decision.pk).update(label="safe"))
    refused(lambda: Decision.objects.filter(pk=decision.pk).delete())
    decision.refresh_from_db()
    assert decision.label == "harmful"


def test_threshold_policies_changes_and_model_events_cannot_be_edited_or_deleted():
    event = model_event_record(model_version=model_version_ensure_active(), action="activated", note="why")
    policy = policy_create(thresholds=policy_current().thresholds, reason="same again")
    change = Change.objects.get(policy=policy)
    refused(lambda: ThresholdPolicy.objects.filter(pk=policy.pk).update(reason="rewritten history"))
    # A plain DELETE, past Django's PROTECT (the change log points at the policy), meets the trigger.
    refused(lambda: ThresholdPolicy.objects.filter(pk=policy.pk)._raw_delete(using="default"))
    refused(lambda: ModelEvent.objects.filter(pk=event.pk).update(note="nothing happened"))
    refused(lambda: ModelEvent.objects.filter(pk=event.pk).delete())
    refused(lambda: Change.objects.filter(pk=change.pk).update(summary="nothing happened"))
    refused(lambda: Change.objects.filter(pk=change.pk).delete())
    assert ThresholdPolicy.objects.get(pk=policy.pk).reason == policy.reason
