from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts.roles import Role
from accounts.services import user_create


class Command(BaseCommand):
    help = "Create a user with a role: uploader, moderator or admin."

    def add_arguments(self, parser) -> None:
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=[r.value for r in Role])
        parser.add_argument("--password", help="Without it the user cannot sign in until a password is set.")
        parser.add_argument("--email", default="")

    def handle(self, *args, username: str, role: str, password: str | None, email: str, **options) -> None:
        try:
            user = user_create(username=username, role=Role(role), password=password, email=email)
        except ValidationError as exc:
            raise CommandError("; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())) from None
        self.stdout.write(f"Created {role} {user.username}")
