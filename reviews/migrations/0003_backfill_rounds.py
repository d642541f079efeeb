"""Give every existing decision its (decided) round, and open a round for every upload waiting
for a human, so the queue built on rounds holds what the old status-based queue held."""

from django.db import migrations


def forwards(apps, schema_editor):
    Upload = apps.get_model("moderation", "Upload")
    Decision = apps.get_model("reviews", "Decision")
    ReviewRound = apps.get_model("reviews", "ReviewRound")

    def keys(upload):
        score = upload.score
        if score is None:
            return {"harmful_score": None, "category": "", "uncertainty": 0.0}
        category, value = max(score.category_scores.items(), key=lambda item: item[1])
        return {"harmful_score": score.harmful_score, "category": category, "uncertainty": abs(value - 0.5) / 0.5}

    numbers = {}
    for decision in Decision.objects.select_related("upload__score").order_by("created_at", "id").iterator():
        upload = decision.upload
        numbers[upload.pk] = numbers.get(upload.pk, 0) + 1
        round_ = ReviewRound.objects.create(
            upload=upload,
            number=numbers[upload.pk],
            reason="failed" if decision.upload_status_before == "failed" else "model",
            status="decided",
            source_id=upload.submitter_id,
            uploaded_at=upload.created_at,
            claimed_by_id=decision.moderator_id,
            closed_at=decision.created_at,
            **keys(upload),
        )
        Decision.objects.filter(pk=decision.pk).update(round=round_)
    for upload in Upload.objects.filter(status__in=["queued", "failed"]).select_related("score").iterator():
        ReviewRound.objects.create(
            upload=upload,
            number=numbers.get(upload.pk, 0) + 1,
            reason="failed" if upload.status == "failed" else "model",
            source_id=upload.submitter_id,
            uploaded_at=upload.created_at,
            **keys(upload),
        )


class Migration(migrations.Migration):
    dependencies = [("reviews", "0002_review_rounds")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
