"""The queue's "most informative first" key: how much a shadow model disagrees with the routing
one (reviews/disagreement.py), with its partial index over open rounds. Open rounds whose upload
a shadow model already scored get their key now; every other round starts at 0."""

from django.db import migrations, models
from django.db.models import Count, Q


def backfill(apps, schema_editor):
    from reviews.disagreement import disagreement  # pure: scores and thresholds only

    ReviewRound = apps.get_model("reviews", "ReviewRound")
    Score = apps.get_model("moderation", "Score")
    rounds = (
        ReviewRound.objects.filter(status="open", upload__score__isnull=False)
        .annotate(scores=Count("upload__scores"))
        .filter(scores__gt=1)
        .select_related("upload__score", "upload__policy")
    )
    for round_ in rounds.iterator():
        upload = round_.upload
        thresholds = upload.policy.thresholds if upload.policy else {}
        others = Score.objects.filter(upload_id=upload.pk).exclude(pk=upload.score_id)
        value = max(
            (disagreement(upload.score.category_scores, o, thresholds) for o in others.values_list("category_scores", flat=True)),
            default=0.0,
        )
        ReviewRound.objects.filter(pk=round_.pk).update(disagreement=value)


class Migration(migrations.Migration):
    dependencies = [
        ("moderation", "0002_metrics_keys"),
        ("reviews", "0007_reopen_and_revealed"),
    ]

    operations = [
        migrations.AddField(
            model_name="reviewround",
            name="disagreement",
            field=models.FloatField(
                default=0.0,
                help_text=(
                    "How much a shadow model disagrees with the routing one (route steps + score gap, "
                    "reviews/disagreement.py); 0 until a shadow model scored the upload."
                ),
            ),
        ),
        migrations.AddIndex(
            model_name="reviewround",
            index=models.Index(
                condition=Q(status="open"),
                fields=["-disagreement", "uncertainty", "uploaded_at"],
                name="round_open_informative",
            ),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
