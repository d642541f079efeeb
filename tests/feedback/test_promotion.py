import pytest

from feedback.services.promotion import promotion_verdict

ACTIVE = {"roc_auc": 0.95, "harmful_recall": 0.80, "f1": 0.85}


@pytest.mark.parametrize(
    ("candidate", "promote", "reason"),
    [
        ({"roc_auc": 0.96, "harmful_recall": 0.82, "f1": 0.87}, True, "F1 0.8700 ≥ 0.8500 + 0.01"),
        ({"roc_auc": 0.95, "harmful_recall": 0.80, "f1": 0.86}, True, "AUC 0.9500 ≥ 0.9500"),
        ({"roc_auc": 0.96, "harmful_recall": 0.82, "f1": 0.855}, False, "F1 0.8550 not above active 0.8500 + 0.01"),
        ({"roc_auc": 0.94, "harmful_recall": 0.90, "f1": 0.95}, False, "ROC AUC 0.9400 < active 0.9500"),
        ({"roc_auc": 0.99, "harmful_recall": 0.79, "f1": 0.95}, False, "harmful recall 0.7900 < active 0.8000"),
    ],
)
def test_promotion_rule(settings, candidate, promote, reason):
    settings.VIGIL_PROMOTION_F1_MARGIN = 0.01
    verdict = promotion_verdict(candidate=candidate, active=ACTIVE)
    assert verdict.promote is promote
    assert any(reason in r for r in verdict.reasons), verdict.reasons
