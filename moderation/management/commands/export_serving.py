"""Write the ONNX exports that let workers serve model versions without torch."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from moderation.models import ModelVersion
from moderation.services.model_versions import RegistryError, model_version_export_serving


class Command(BaseCommand):
    help = (
        "Export every model version that is not retired (or the named ones) to ONNX under "
        "VIGIL_MODEL_DIR/serving/, so workers serve them without importing torch. Versions "
        "registered by this release are exported at registration; run this after upgrading."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("names", nargs="*", help="Model version names (default: all but retired).")

    def handle(self, *args, names: list[str], **options) -> None:
        versions = (
            ModelVersion.objects.filter(name__in=names)
            if names
            else ModelVersion.objects.exclude(status=ModelVersion.Status.RETIRED)
        )
        for version in versions.order_by("created_at"):
            try:
                path = model_version_export_serving(model_version=version)
            except RegistryError as exc:
                self.stderr.write(f"{version.name}: {exc}")
                continue
            self.stdout.write(f"{version.name}: {path}")
