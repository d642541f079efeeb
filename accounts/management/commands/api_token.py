from django.core.management.base import BaseCommand, CommandError

from accounts.models import ApiClient
from accounts.services import api_client_revoke, api_client_rotate_token


class Command(BaseCommand):
    help = "Revoke an API client's token (requests with it get 401 at once), or rotate it and print the new one."

    def add_arguments(self, parser) -> None:
        parser.add_argument("action", choices=["revoke", "rotate"])
        parser.add_argument("name")

    def handle(self, *args, action: str, name: str, **options) -> None:
        client = ApiClient.objects.filter(name=name).first()
        if client is None:
            raise CommandError(f"no API client named {name!r}")
        if action == "revoke":
            api_client_revoke(client=client)
            self.stdout.write(f"Revoked the token of {client.name}.")
            return
        self.stdout.write(f"New token for {client.name}; the old one no longer works:")
        self.stdout.write(api_client_rotate_token(client=client))
