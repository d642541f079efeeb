"""python manage.py quantize_model [NAME] [--calibration DIR] [--activate | --shadow]"""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError

from moderation.services.model_versions import (
    RegistryError,
    model_version_ensure_active,
    model_version_get,
    model_version_reference,
)


class Command(BaseCommand):
    help = (
        "Register the INT8 version of a model version (default: the active one; an int8 version stands for its fp32 "
        "source): static quantization calibrated on scikit-image's photos or on --calibration, refused unless its "
        "scores agree with fp32 within VIGIL_QUANTIZE_MAX_SCORE_DIFF on photos it was not calibrated on. It is a "
        "candidate unless --activate or --shadow; running it again reuses the int8 files made before."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("name", nargs="?", help="model version name (default: the active version)")
        parser.add_argument(
            "--calibration",
            metavar="DIR",
            help="calibrate on these photos instead (an export_feedback ImageFolder: train/ calibrates, val/ is "
            "checked; or any folder of images)",
        )
        group = parser.add_mutually_exclusive_group()
        group.add_argument("--activate", action="store_true", help="then route uploads with it")
        group.add_argument("--shadow", action="store_true", help="then score new uploads with it in shadow")

    def handle(self, *args, name: str | None, calibration: str | None, activate: bool, shadow: bool, **options):
        from moderation.ml.quantize import QuantizationError
        from moderation.services.quantization import QuantizationRefused, model_version_quantize

        try:
            version = model_version_get(name=name) if name else model_version_ensure_active()
            source = model_version_reference(version)
            if source.pk != version.pk:
                self.stdout.write(f"{version.name} is the int8 version of {source.name}: quantizing {source.name}")
            self.stdout.write(f"quantizing {source.name} ({source.architecture}) to int8…")
            started = time.perf_counter()
            result = model_version_quantize(
                model_version=source, calibration=calibration, activate=activate, shadow=shadow
            )
        except QuantizationRefused as exc:
            raise CommandError(str(exc)) from None
        except (RegistryError, QuantizationError) as exc:
            raise CommandError(str(exc)) from None
        int8 = result.model_version
        quantized = int8.config["quantized"]
        agreement = quantized["agreement"]
        if not result.created:
            self.stdout.write(f"already registered: {int8.name} ({int8.status})")
        else:
            how = "reused the int8 files made before" if result.cached else f"{time.perf_counter() - started:.0f} s"
            self.stdout.write(self.style.SUCCESS(f"registered {int8.name} ({int8.status}), {how}"))
        self.stdout.write(
            f"  calibrated on {quantized['calibration']['images']} images ({quantized['calibration']['from']}); "
            f"agreement on {agreement['images']} check images:"
        )
        for category, figures in agreement["categories"].items():
            self.stdout.write(
                f"    {category:<10} max |Δ| {figures['max_abs_diff']:.4f}  mean |Δ| {figures['mean_abs_diff']:.5f}"
            )
        self.stdout.write(
            f"  routed differently under policy v{agreement['policy_version']}: {agreement['routed_differently']}; "
            f"limit {agreement['limit']:g} (VIGIL_QUANTIZE_MAX_SCORE_DIFF)"
        )
        self.stdout.write(f"  weights sha256 {int8.weights_sha256}")
