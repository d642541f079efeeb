import pytest
from django.core.exceptions import ValidationError

from moderation.models import Change, ThresholdPolicy
from moderation.services.policies import DEFAULT_THRESHOLDS, NoHumanBand, policy_create, policy_current


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


@pytest.mark.django_db
def test_a_policy_without_a_human_band_needs_an_explicit_confirmation(admin_user):
    """Reproduction 1's policy: weapon 0.8838–0.8838 would send no weapon image to a human."""
    policy_current()
    bandless = {"weapon": {"approve_below": 0.8838, "reject_from": 0.8838}, "nudity": DEFAULT_THRESHOLDS["nudity"]}
    with pytest.raises(NoHumanBand, match="weapon: approve_below equals reject_from") as refused:
        policy_create(thresholds=bandless, reason="suggested", created_by=admin_user)
    assert refused.value.categories == ["weapon"]
    assert ThresholdPolicy.objects.count() == 1 and not Change.objects.exists()
    policy = policy_create(thresholds=bandless, reason="I mean it", created_by=admin_user, confirm_no_human_band=True)
    assert policy.without_human_band == ["weapon"]
    change = Change.objects.get()
    assert (change.kind, change.action, change.policy, change.actor) == ("policy", "saved", policy, admin_user)
    assert "No human band for weapon (confirmed)" in change.summary and "Why: I mean it" in change.summary
