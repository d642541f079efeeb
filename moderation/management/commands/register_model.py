from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from moderation.models import ModelVersion
from moderation.services.model_versions import RegistryError, model_version_register


class Command(BaseCommand):
    help = "Register a fine-tuned checkpoint (model.pt from `train`) as a candidate model version."

    def add_arguments(self, parser) -> None:
        parser.add_argument("checkpoint", help="path to model.pt")
        parser.add_argument("--name", default="", help="version name (default: backbone-category-sha)")
        parser.add_argument("--notes", default="")
        parser.add_argument("--no-nudity", action="store_true", help="do not add open_nsfw's nudity score")
        parser.add_argument(
            "--tiling",
            choices=ModelVersion.Tiling.values,
            help="tiled scoring: the whole frame plus 2x2 or 3x3 overlapping tiles of wide or large frames, max over "
            "them (default: what the checkpoint was trained with, `train --tiling`, else none); changeable later on "
            "the model versions page",
        )

    def handle(self, *args, checkpoint: str, name: str, notes: str, no_nudity: bool, tiling: str | None, **options):
        try:
            version = model_version_register(
                checkpoint=checkpoint, name=name, notes=notes, nudity=not no_nudity, tiling=tiling
            )
        except RegistryError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            f"registered {version.name} ({version.status}), tiling {version.tiling}, weights {version.weights}"
        )
