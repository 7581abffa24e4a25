import json
import os
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from accounts.selectors import api_token_user
from accounts.services import api_token_create
from metrics.services import training_session_create
from rooms.models import AccessLevel
from rooms.selectors import room_list_for_user
from rooms.services import room_create
from spectator_demo import ALGORITHM, ROOM_NAME, SEATS, TRAINING_SESSION_ID, USERNAME


class Command(BaseCommand):
    help = (
        "Prepare the demo trainer (idempotent): its user and API token, its training session and a public room. "
        "Writes them to a JSON file readable only by you, for `python -m spectator_demo --config FILE`."
    )

    def add_arguments(self, parser):
        parser.add_argument("--output", type=Path, default=None, help="default: SPECTATOR_DATA_DIR/demo.json")
        parser.add_argument("--url", default="", help="the server's address, to print the room's link")

    def handle(self, *args, output, url, **options):
        output = output or Path(settings.DATA_DIR) / "demo.json"
        saved = json.loads(output.read_text()) if output.exists() else {}
        token = saved.get("token", "")
        user = api_token_user(token)
        if user is None or user.get_username() != USERNAME:
            _token, token = api_token_create(username=USERNAME, name="demo trainer")
            user = api_token_user(token)

        session, _created = training_session_create(
            owner=user, id=saved.get("training_session_id") or TRAINING_SESSION_ID, name=ROOM_NAME, algorithm=ALGORITHM
        )
        if not session.is_open:
            # Closed by someone (or completed): the demo goes on in a new session.
            session, _created = training_session_create(owner=user, name=ROOM_NAME, algorithm=ALGORITHM)

        room = room_list_for_user(user).filter(training_session=session, access_level=AccessLevel.PUBLIC).first()
        if room is None:
            room, _password = room_create(
                creator=user,
                training_session=session,
                name=ROOM_NAME,
                max_spectators=SEATS,
                duration_hours=settings.SPECTATOR_MAX_ROOM_HOURS,
            )

        _write_private(
            output,
            {
                "username": USERNAME,
                "token": token,
                "training_session_id": session.pk,
                "room_code": room.code,
                "room_name": room.name,
            },
        )
        link = f"{url.rstrip('/')}/r/{room.code}/" if url else f"/r/{room.code}/"
        self.stdout.write(f"{room.name}: room {room.code} ({link}); token and ids in {output}")


def _write_private(path: Path, data: dict) -> None:
    """Write ``data`` as JSON to ``path``, readable and writable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(data, handle, indent=2)
        handle.write("\n")
