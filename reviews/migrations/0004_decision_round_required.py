import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("reviews", "0003_backfill_rounds")]

    operations = [
        migrations.AlterField(
            model_name="decision",
            name="round",
            field=models.OneToOneField(
                on_delete=django.db.models.deletion.PROTECT, related_name="decision", to="reviews.reviewround"
            ),
        ),
    ]
