"""``manage.py train``: the same trainer as ``python -m moderation.ml.train``, with registration.

With ``--register`` the best checkpoint becomes a candidate model version (``--activate`` also
makes it route traffic).
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from moderation.ml.backbones import WeightsUnavailable
from moderation.ml.datasets import DatasetError
from moderation.ml.train import build_parser, config_from_args, result_summary, train
from moderation.services.model_versions import RegistryError, model_version_activate, model_version_register


class Command(BaseCommand):
    help = (
        "Fine-tune a harmful-vs-safe classifier on an ImageFolder dataset (train/ and val/ with safe/, harmful/; "
        "or safe/ and harmful/ with a splits file, --splits or DATA/SPLITS.csv)."
    )

    def add_arguments(self, parser) -> None:
        build_parser(parser)
        parser.add_argument("--register", action="store_true", help="register model.pt as a candidate model version")
        parser.add_argument("--name", default="", help="model version name when registering")
        parser.add_argument("--activate", action="store_true", help="register and make it the active model")

    def handle(self, *args, **options) -> None:
        import argparse

        config = config_from_args(argparse.Namespace(**options))
        try:
            result = train(config)
        except (DatasetError, WeightsUnavailable, ValueError) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(result_summary(result))
        if options["register"] or options["activate"]:
            try:
                version = model_version_register(checkpoint=result.checkpoint, name=options["name"])
            except RegistryError as exc:
                raise CommandError(str(exc)) from None
            self.stdout.write(f"registered model version {version.name} ({version.status}), tiling {version.tiling}")
            if options["activate"]:
                model_version_activate(model_version=version)
                self.stdout.write(f"activated {version.name}")
