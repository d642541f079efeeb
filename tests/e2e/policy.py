"""The threshold policy the end-to-end tests route real photos by."""

from moderation.services.policies import policy_create


def policy_queueing_the_astronaut(admin):
    """Chelsea and coffee are far below every threshold and are approved; anything with weapon
    >= 0.002 is queued, so the astronaut photo (weapon ~0.005 on the baseline) reaches humans."""
    return policy_create(
        thresholds={
            "weapon": {"approve_below": 0.002, "reject_from": 0.5},
            "nudity": {"approve_below": 0.2, "reject_from": 0.8},
        },
        reason="e2e",
        created_by=admin,
    )
