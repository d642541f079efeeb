from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from moderation.services.model_versions import RegistryError, model_version_rollback


class Command(BaseCommand):
    help = "Re-activate the model version that was active before the current one."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--apply-thresholds", action="store_true", help="also restore that model's suggested thresholds"
        )

    def handle(self, *args, apply_thresholds: bool, **options) -> None:
        try:
            version = model_version_rollback(apply_thresholds=apply_thresholds)
        except RegistryError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"rolled back; active model: {version.name}")
