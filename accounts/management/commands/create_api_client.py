from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import IntegrityError

from accounts.services import api_client_create


class Command(BaseCommand):
    help = "Create an API client and print its token (the last line of output)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("name")

    def handle(self, *args, name: str, **options) -> None:
        try:
            client, token = api_client_create(name=name)
        except (ValidationError, IntegrityError) as exc:
            raise CommandError(f"cannot create API client {name!r}: it exists or the name is invalid ({exc})") from None
        self.stdout.write(f"Created API client {client.name}. Send: Authorization: Token <token>")
        self.stdout.write(token)
