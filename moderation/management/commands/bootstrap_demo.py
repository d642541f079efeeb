"""Prepare a fresh install: activate the baseline model, save the default policy, create demo users.

On a fresh install the baseline is also quantized (moderation/services/quantization.py) and its
int8 version activated when it passed the agreement check; the fp32 baseline stays registered,
retired, as the version to roll back to. On an existing install nothing is switched: an int8
baseline made here is a candidate. ``--no-quantize`` (or VIGIL_QUANTIZE_AT_REGISTRATION=0) skips it.

Demo credentials come from VIGIL_DEMO_ADMIN_PASSWORD / VIGIL_DEMO_MODERATOR_PASSWORD, or are
generated once and kept in var/demo-credentials.txt (readable by the owner only).
"""

from __future__ import annotations

import json
import os
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from accounts.roles import Role
from accounts.services import user_create
from config.env import env_int
from moderation.models import ModelVersion
from moderation.services.model_versions import (
    BASELINE_NAME,
    model_version_ensure_active,
    model_version_export_serving,
)
from moderation.services.policies import policy_current

DEMO_USERS = {"admin": Role.ADMIN, "moderator": Role.MODERATOR}


class Command(BaseCommand):
    help = "Activate the baseline model, save the default policy and create a demo admin and moderator."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--no-users", action="store_true", help="Skip the demo users.")
        parser.add_argument(
            "--no-quantize", action="store_true", help="Do not quantize the baseline (serve it in fp32)."
        )

    def handle(self, *args, no_users: bool, no_quantize: bool, **options) -> None:
        fresh = not ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).exists()
        model = model_version_ensure_active()
        if not (model.config or {}).get("quantized"):
            model_version_export_serving(model_version=model)  # an install from before exports existed
        if settings.VIGIL_QUANTIZE_AT_REGISTRATION and not no_quantize:
            model = self.quantized_baseline(model, activate=fresh and model.name == BASELINE_NAME)
        policy = policy_current()
        self.stdout.write(f"Active model: {model.name}; threshold policy v{policy.version}")
        if no_users:
            return
        credentials_file = settings.VAR_DIR / "demo-credentials.txt"
        saved = json.loads(credentials_file.read_text()) if credentials_file.exists() else {}
        User = get_user_model()
        for username, role in DEMO_USERS.items():
            password = os.environ.get(f"VIGIL_DEMO_{username.upper()}_PASSWORD") or saved.get(username)
            if not User.objects.filter(username=username).exists():
                password = password or secrets.token_urlsafe(12)
                user_create(username=username, role=role, password=password)
            elif password and os.environ.get(f"VIGIL_DEMO_{username.upper()}_PASSWORD"):
                user = User.objects.get(username=username)
                user.set_password(password)
                user.save(update_fields=["password"])
            saved[username] = password
        credentials_file.parent.mkdir(parents=True, exist_ok=True)
        credentials_file.write_text(json.dumps(saved))
        credentials_file.chmod(0o600)
        # The port `make run` serves on (config/supervisord.conf reads the same variable).
        port = env_int("VIGIL_PORT", 8000, minimum=1)
        self.stdout.write(self.style.SUCCESS(f"Demo accounts (sign in at http://127.0.0.1:{port}/login/):"))
        for username in DEMO_USERS:
            shown = saved.get(username) or f"(unknown: set VIGIL_DEMO_{username.upper()}_PASSWORD to reset)"
            self.stdout.write(f"  {username:<10} password: {shown}")

    def quantized_baseline(self, active, *, activate: bool):
        """Register the baseline's int8 version (reused when it is there); on a fresh install make
        it the active model. A refusal or a failure leaves the fp32 baseline serving."""
        from moderation.services.model_versions import model_version_get
        from moderation.services.quantization import model_version_quantize

        self.stdout.write("Quantizing the baseline to int8 (a minute the first time)…")
        try:
            result = model_version_quantize(model_version=model_version_get(name=BASELINE_NAME))
        except Exception as exc:  # the fp32 baseline serves: a fresh install must come up
            self.stderr.write(f"The int8 baseline was not registered: {exc}")
            return active
        int8 = result.model_version
        agreement = int8.config["quantized"]["agreement"]
        if activate:
            from moderation.services.model_versions import model_version_activate

            int8 = model_version_activate(
                model_version=int8,
                note=f"first install: int8 baseline, max score difference {agreement['max_abs_diff']:.4f} from fp32 "
                f"(limit {agreement['limit']:g}); {BASELINE_NAME} is the rollback target",
                propose_thresholds=False,
            )
        self.stdout.write(
            f"Int8 baseline: {int8.name} ({int8.status}), max score difference {agreement['max_abs_diff']:.4f} "
            f"from fp32 on {agreement['images']} check images"
        )
        return int8 if int8.status == ModelVersion.Status.ACTIVE else active
