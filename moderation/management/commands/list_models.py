from __future__ import annotations

from django.core.management.base import BaseCommand

from moderation.models import ModelVersion


class Command(BaseCommand):
    help = "List registered model versions, newest first, with status and validation metrics."

    def handle(self, *args, **options) -> None:
        self.stdout.write(
            f"{'name':<40} {'status':<10} {'architecture':<34} {'tiling':<6} {'val acc':>8} {'val AUC':>8}  created"
        )
        for version in ModelVersion.objects.order_by("-created_at"):
            val = (version.metrics or {}).get("val", {})
            acc = f"{val['accuracy']:.4f}" if "accuracy" in val else "-"
            auc = f"{val['roc_auc']:.4f}" if "roc_auc" in val else "-"
            self.stdout.write(
                f"{version.name:<40} {version.status:<10} {version.architecture:<34} {version.tiling:<6} "
                f"{acc:>8} {auc:>8}  {version.created_at:%Y-%m-%d %H:%M}"
            )
