from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from moderation.services.model_versions import RegistryError, model_version_rollback, model_version_rollback_target
from moderation.services.policies import policy_current


class Command(BaseCommand):
    help = (
        "Re-activate the model version that was active before the current one, and the threshold policy "
        "that was in force with it."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--reason", required=True, help="why (kept in the audit log and the change log)")

    def handle(self, *args, reason: str, **options) -> None:
        target = model_version_rollback_target()
        try:
            version = model_version_rollback(user=None, reason=reason)
        except RegistryError as exc:
            raise CommandError(str(exc)) from None
        policy = policy_current()
        restored = f" (thresholds of policy v{target.policy.version})" if target and target.policy else ""
        self.stdout.write(f"rolled back; active model: {version.name}; policy v{policy.version} in force{restored}")
