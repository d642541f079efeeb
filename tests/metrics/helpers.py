from moderation.models import ModelVersion, Score, Upload
from moderation.services.model_versions import model_version_ensure_active
from reviews.services.claims import round_claim
from reviews.services.decisions import decision_create
from tests.factories import make_round, make_upload


def labelled(moderator, score: float, label: str, category: str = ""):
    """An upload the model scored ``score`` (weapon) that ``moderator`` labelled ``label``."""
    round_ = make_round(score=score)
    round_claim(round_id=round_.pk, moderator=moderator)
    return decision_create(round_id=round_.pk, moderator=moderator, label=label, category=category)


def labelled_scores(moderator, scores: dict[str, float], label: str, category: str = ""):
    """An upload the model scored ``scores`` (per category) that ``moderator`` labelled ``label``,
    naming ``category``."""
    upload = make_upload()
    score = Score.objects.create(
        upload=upload,
        model_version=active(),
        harmful_score=max(scores.values()),
        category_scores=scores,
        latency_ms=1.0,
    )
    Upload.objects.filter(pk=upload.pk).update(score=score)
    round_ = make_round(upload)
    round_claim(round_id=round_.pk, moderator=moderator)
    return decision_create(round_id=round_.pk, moderator=moderator, label=label, category=category)


def active() -> ModelVersion:
    return model_version_ensure_active()
