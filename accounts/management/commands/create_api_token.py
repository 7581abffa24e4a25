from django.core.management.base import BaseCommand

from accounts.services import api_token_create


class Command(BaseCommand):
    help = "Create an API token for USERNAME (creating the user when missing) and print it."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--staff", action="store_true", help="make the user staff (moderates every room)")
        parser.add_argument("--name", default="", help="a label for the token")

    def handle(self, *args, username, staff, name, **options):
        _token, raw = api_token_create(username=username, staff=staff, name=name)
        self.stdout.write(raw)
