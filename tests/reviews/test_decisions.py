import pytest

from moderation.models import Upload
from moderation.services.scoring import upload_score
from reviews.models import Decision
from reviews.services import DecisionConflict, decision_create
from tests.factories import make_upload


def queued_upload(uploader) -> Upload:
    upload = make_upload(uploader)
    Upload.objects.filter(pk=upload.pk).update(status=Upload.Status.QUEUED)
    return upload


@pytest.mark.django_db
@pytest.mark.parametrize(("label", "status"), [("safe", "approved"), ("harmful", "rejected")])
def test_decision_finishes_the_upload(uploader, moderator, label, status):
    upload = queued_upload(uploader)
    decision = decision_create(upload_id=upload.pk, moderator=moderator, label=label, note="looked", time_spent_ms=1500)
    upload.refresh_from_db()
    assert (upload.status, upload.decided_by) == (status, "human")
    assert upload.decided_at is not None
    assert (decision.label, decision.moderator, decision.note, decision.time_spent_ms) == (
        label,
        moderator,
        "looked",
        1500,
    )
    assert decision.upload_status_before == "queued"


@pytest.mark.django_db
@pytest.mark.slow
def test_decision_keeps_the_model_score_and_version(uploader, moderator):
    from tests.images import photo_jpeg

    upload = make_upload(uploader, photo_jpeg("astronaut"))
    upload_score(upload_id=upload.pk)
    Upload.objects.filter(pk=upload.pk).update(status=Upload.Status.QUEUED, decided_by="")
    upload.refresh_from_db()
    decision = decision_create(upload_id=upload.pk, moderator=moderator, label="safe")
    assert decision.model_version == upload.score.model_version
    assert decision.model_score == upload.score.harmful_score
    assert decision.model_category_scores == upload.score.category_scores


@pytest.mark.django_db
def test_second_decision_on_the_same_upload_is_a_conflict(uploader, moderator, admin_user):
    upload = queued_upload(uploader)
    decision_create(upload_id=upload.pk, moderator=moderator, label="safe")
    with pytest.raises(DecisionConflict):
        decision_create(upload_id=upload.pk, moderator=admin_user, label="harmful")
    upload.refresh_from_db()
    assert upload.status == "approved"
    assert Decision.objects.count() == 1


@pytest.mark.django_db
def test_failed_uploads_can_be_decided_but_pending_ones_cannot(uploader, moderator):
    failed = make_upload(uploader)
    Upload.objects.filter(pk=failed.pk).update(status=Upload.Status.FAILED)
    decision_create(upload_id=failed.pk, moderator=moderator, label="harmful")
    assert Upload.objects.get(pk=failed.pk).status == "rejected"
    pending = make_upload(uploader)
    with pytest.raises(DecisionConflict):
        decision_create(upload_id=pending.pk, moderator=moderator, label="safe")
    assert Upload.objects.get(pk=pending.pk).status == "pending"


@pytest.mark.django_db
def test_unknown_label_is_refused(uploader, moderator):
    upload = queued_upload(uploader)
    with pytest.raises(ValueError):
        decision_create(upload_id=upload.pk, moderator=moderator, label="maybe")
    assert Upload.objects.get(pk=upload.pk).status == "queued"
