"""Schedule retraining nightly at 03:00 UTC; admins change it under Periodic tasks."""

from django.db import migrations


def forwards(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    schedule, _ = CrontabSchedule.objects.get_or_create(
        minute="0", hour="3", day_of_week="*", day_of_month="*", month_of_year="*", timezone="UTC"
    )
    PeriodicTask.objects.get_or_create(
        name="Retrain on new feedback",
        defaults={
            "task": "feedback.tasks.retrain_scheduled",
            "crontab": schedule,
            "description": "Export, fine-tune and evaluate when enough new human labels exist.",
        },
    )


def backwards(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name="Retrain on new feedback").delete()


class Migration(migrations.Migration):
    dependencies = [("feedback", "0001_initial"), ("django_celery_beat", "0019_alter_periodictasks_options")]

    operations = [migrations.RunPython(forwards, backwards)]
