from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from moderation.services.model_versions import RegistryError, model_version_activate, model_version_get


class Command(BaseCommand):
    help = (
        "Make a model version the one that scores and routes new uploads (workers switch without a restart). "
        "The threshold policy is not changed: the model's suggested thresholds wait as a draft on the threshold page."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("name", help="model version name (see `list_models`)")
        parser.add_argument("--note", default="", help="why (kept in the audit log and the change log)")

    def handle(self, *args, name: str, note: str, **options) -> None:
        try:
            version = model_version_activate(model_version=model_version_get(name=name), note=note)
        except RegistryError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"active model: {version.name}")
