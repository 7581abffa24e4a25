from django.core.management.base import BaseCommand

from metrics.recording_services import recordings_prune


class Command(BaseCommand):
    help = (
        "Apply every training session's recording retention once: delete episodes past their max age and "
        "beyond their byte budget (oldest first), prune best/worst sampling, and remove orphaned files."
    )

    def handle(self, *args, **options):
        result = recordings_prune()
        self.stdout.write(
            f"{result['expired']} episode(s) expired, {result['over_budget']} over the byte budget, "
            f"{result['not_best_or_worst']} neither best nor worst, {result['orphan_files']} orphaned file(s) removed."
        )
