"""manage.py demo_setup: the demo's user, token, training session and public room, idempotently."""

import io
import json
import stat

import pytest
from django.core.management import call_command

from accounts.selectors import api_token_user
from metrics.models import TrainingSession
from metrics.services import training_session_close
from rooms.models import Room
from rooms.selectors import room_list_public
from spectator_demo import ROOM_NAME, USERNAME


def setup(path):
    call_command("demo_setup", output=path, url="http://127.0.0.1:8000", stdout=io.StringIO())
    return json.loads(path.read_text())


@pytest.mark.django_db
def test_it_prepares_a_public_room_and_a_private_file(tmp_path):
    path = tmp_path / "demo.json"
    saved = setup(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert api_token_user(saved["token"]).get_username() == USERNAME
    room = Room.objects.get(code=saved["room_code"])
    assert room.name == ROOM_NAME and room.training_session_id == saved["training_session_id"]
    assert list(room_list_public()) == [room]


@pytest.mark.django_db
def test_running_it_again_changes_nothing(tmp_path):
    path = tmp_path / "demo.json"
    first = setup(path)
    path.chmod(0o644)
    again = setup(path)
    assert again == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert Room.objects.count() == 1 and TrainingSession.objects.count() == 1


@pytest.mark.django_db
def test_a_closed_room_or_session_is_replaced(tmp_path):
    path = tmp_path / "demo.json"
    first = setup(path)
    Room.objects.filter(code=first["room_code"]).update(status=Room.Status.CLOSED)
    second = setup(path)
    assert Room.objects.live().get().code == second["room_code"]
    assert second["training_session_id"] == first["training_session_id"]
    session = TrainingSession.objects.get(pk=first["training_session_id"])
    training_session_close(training_session=session, actor=session.owner)
    third = setup(path)
    assert third["training_session_id"] != first["training_session_id"]
    assert Room.objects.live().get().training_session_id == third["training_session_id"]
    assert third["token"] == first["token"]


@pytest.mark.django_db
def test_a_revoked_token_is_replaced(tmp_path):
    from accounts.models import ApiToken

    path = tmp_path / "demo.json"
    first = setup(path)
    ApiToken.objects.update(revoked_at="2020-01-01T00:00:00Z")
    second = setup(path)
    assert second["token"] != first["token"] and api_token_user(second["token"]).get_username() == USERNAME
    assert second["room_code"] == first["room_code"]
