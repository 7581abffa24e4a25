from django.core.management.base import BaseCommand

from rooms.sweeper import sweep_once


class Command(BaseCommand):
    help = "Mark rooms past their expiry as expired, expire their pending requests, and auto-approve due requests."

    def handle(self, *args, **options):
        result = sweep_once()
        self.stdout.write(
            f"{result['rooms_expired']} room(s) expired, {result['requests_auto_approved']} request(s) auto-approved, "
            f"{result['spectators_timed_out']} stale seat(s) freed."
        )
