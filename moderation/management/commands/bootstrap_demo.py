"""Prepare a fresh install: activate the baseline model, save the default policy, create demo users.

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
from moderation.services.model_versions import model_version_ensure_active, model_version_export_serving
from moderation.services.policies import policy_current

DEMO_USERS = {"admin": Role.ADMIN, "moderator": Role.MODERATOR}


class Command(BaseCommand):
    help = "Activate the baseline model, save the default policy and create a demo admin and moderator."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--no-users", action="store_true", help="Skip the demo users.")

    def handle(self, *args, no_users: bool, **options) -> None:
        model = model_version_ensure_active()
        model_version_export_serving(model_version=model)  # an install from before exports existed
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
