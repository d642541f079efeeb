from moderation.models import ModelVersion
from moderation.services.model_versions import model_version_ensure_active
from reviews.services.claims import round_claim
from reviews.services.decisions import decision_create
from tests.factories import make_round


def labelled(moderator, score: float, label: str, category: str = ""):
    """An upload the model scored ``score`` (weapon) that ``moderator`` labelled ``label``."""
    round_ = make_round(score=score)
    round_claim(round_id=round_.pk, moderator=moderator)
    return decision_create(round_id=round_.pk, moderator=moderator, label=label, category=category)


def active() -> ModelVersion:
    return model_version_ensure_active()
