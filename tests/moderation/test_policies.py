import pytest
from django.core.exceptions import ValidationError

from moderation.models import ThresholdPolicy
from moderation.services.policies import DEFAULT_THRESHOLDS, policy_create, policy_current


@pytest.mark.django_db
def test_first_use_saves_the_defaults_as_version_1():
    policy = policy_current()
    assert policy.version == 1
    assert policy.thresholds == DEFAULT_THRESHOLDS
    assert policy_current().pk == policy.pk
    assert ThresholdPolicy.objects.count() == 1


@pytest.mark.django_db
def test_policy_create_adds_a_version_with_who_and_why(admin_user):
    policy_current()
    policy = policy_create(
        thresholds={"weapon": {"approve_below": 0.01, "reject_from": 0.6}},
        reason="fewer items for humans",
        created_by=admin_user,
    )
    assert (policy.version, policy.created_by, policy.reason) == (2, admin_user, "fewer items for humans")
    assert policy_current().pk == policy.pk
    assert ThresholdPolicy.objects.get(version=1).thresholds == DEFAULT_THRESHOLDS


@pytest.mark.django_db
@pytest.mark.parametrize(
    "thresholds",
    [
        {},
        {"weapon": {"approve_below": 0.6, "reject_from": 0.5}},
        {"weapon": {"approve_below": -0.1, "reject_from": 0.5}},
        {"weapon": {"approve_below": 0.1, "reject_from": 1.5}},
        {"weapon": {"approve_below": "low", "reject_from": 0.5}},
        {"weapon": {"approve_below": 0.1}},
        {"weapon": 0.5},
    ],
)
def test_invalid_thresholds_are_refused(thresholds):
    with pytest.raises(ValidationError):
        policy_create(thresholds=thresholds, reason="test")
    assert not ThresholdPolicy.objects.exists()


@pytest.mark.django_db
def test_a_reason_is_required():
    with pytest.raises(ValidationError):
        policy_create(thresholds=DEFAULT_THRESHOLDS, reason="  ")
