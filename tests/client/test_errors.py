"""Error mapping and request shape, with httpx's MockTransport standing in for the server."""

import json

import httpx
import pytest

import spectator_client as sc
from spectator_client.errors import error_for_close, error_for_response
from spectator_client.transport import ApiConfig, SyncApi
from tests.client.support import run

CASES = [
    (404, {"error": "room_not_found", "detail": "No room with that code."}, "rooms/ABC234/", sc.RoomNotFound,
     ValueError),
    (404, {"error": "not_found", "detail": "No such training session."}, "sessions/x/ingest/",
     sc.TrainingSessionNotFound, ValueError),
    (403, {"error": "wrong_password", "detail": "Wrong password."}, "rooms/A/join/", sc.InvalidPassword, ValueError),
    (403, {"error": "password_required", "detail": "Needs a password."}, "rooms/A/join/", sc.InvalidPassword,
     ValueError),
    (403, {"error": "banned", "detail": "Banned."}, "rooms/A/join/", sc.Banned, ValueError),
    (403, {"error": "not_invited", "detail": "Not invited."}, "rooms/A/join/", sc.AccessDenied, ValueError),
    (403, {"error": "join_denied", "detail": "Denied."}, "rooms/A/join/", sc.AccessDenied, ValueError),
    (403, {"error": "permission_denied", "detail": "Managers only."}, "rooms/A/close/", sc.AccessDenied, ValueError),
    (401, {"error": "sign_in_required", "detail": "Sign in."}, "rooms/A/join/", sc.AuthenticationRequired,
     ValueError),
    (401, {"error": "authentication_failed", "detail": "Invalid token."}, "rooms/", sc.AuthenticationRequired,
     ValueError),
    (409, {"error": "room_full", "detail": "Full."}, "rooms/A/join/", sc.RoomFull, RuntimeError),
    (410, {"error": "room_expired", "detail": "Expired."}, "rooms/A/join/", sc.RoomExpired, RuntimeError),
    (410, {"error": "room_closed", "detail": "Closed."}, "rooms/A/join/", sc.RoomClosed, RuntimeError),
    (400, {"error": "validation_error", "detail": "custom_room_code: bad", "fields": {"custom_room_code": ["bad"]}},
     "rooms/", sc.ValidationError, ValueError),
    (429, {"error": "throttled", "detail": "Slow down."}, "rooms/A/join/", sc.RateLimited, RuntimeError),
    (429, {"error": "locked_out", "detail": "Too many wrong passwords."}, "rooms/A/join/", sc.RateLimited,
     RuntimeError),
    (500, None, "rooms/", sc.ServerUnavailable, ConnectionError),
    (503, {"error": "unavailable", "detail": "Down."}, "rooms/", sc.ServerUnavailable, ConnectionError),
]  # fmt: skip


@pytest.mark.parametrize(("status", "body", "path", "error_class", "seed_base"), CASES)
def test_http_errors_map_to_typed_errors(status, body, path, error_class, seed_base):
    def handler(request):
        content = json.dumps(body).encode() if body is not None else b"<h1>Server Error</h1>"
        return httpx.Response(status, content=content, headers={"Retry-After": "7"})

    api = SyncApi(ApiConfig.build("http://spectator.test", "spt_x"), transport=httpx.MockTransport(handler))
    with pytest.raises(error_class) as caught:
        api.request("GET", path)
    error = caught.value
    assert type(error) is error_class
    assert isinstance(error, sc.SpectatorError) and isinstance(error, seed_base)
    assert error.status == status
    if body:
        assert error.code == body["error"] and error.detail == body["detail"]
    if error_class is sc.ValidationError:
        assert error.field == "custom_room_code" and error.fields == {"custom_room_code": ["bad"]}
    if error_class is sc.RateLimited:
        assert error.retry_after == 7.0


def test_room_closed_is_a_kind_of_room_expired():
    assert issubclass(sc.RoomClosed, sc.RoomExpired)
    assert issubclass(sc.InvalidPassword, sc.AccessDenied)


def test_connection_failures_are_server_unavailable():
    def handler(request):
        raise httpx.ConnectError("connection refused", request=request)

    manager = sc.SpectatorManager("http://spectator.test", "spt_x", transport=httpx.MockTransport(handler))
    with pytest.raises(sc.ServerUnavailable) as caught:
        run(manager.get_session_info("ABC234"))
    assert isinstance(caught.value, ConnectionError)


@pytest.mark.parametrize(
    ("code", "reason", "error_class"),
    [
        (4400, "", sc.ValidationError),
        (4401, "", sc.AuthenticationRequired),
        (4403, "kicked", sc.AccessDenied),
        (4404, "", sc.RoomNotFound),
        (4408, "", sc.StreamBehind),
        (4409, "", sc.RoomFull),
        (4410, "room expired", sc.RoomExpired),
        (4410, "room closed", sc.RoomClosed),
        (4429, "", sc.RateLimited),
        (1011, "", sc.ServerUnavailable),
    ],
)
def test_websocket_close_codes_map_to_typed_errors(code, reason, error_class):
    error = error_for_close(code, reason)
    assert type(error) is error_class and error.status == code


def test_unknown_json_shapes_still_give_a_typed_error():
    error = error_for_response(418, ["teapot"], {})
    assert type(error) is sc.SpectatorError and error.code == "http_418"


def test_requests_carry_the_token_and_the_configured_server(monkeypatch):
    seen = []

    def handler(request):
        seen.append(request)
        return httpx.Response(200, json={"room_id": "r1", "room_code": "ABC234", "training_session_id": "ts"})

    monkeypatch.setenv("SPECTATOR_URL", "http://env-host:9000/")
    monkeypatch.setenv("SPECTATOR_TOKEN", "spt_from_env")
    manager = sc.SpectatorManager(transport=httpx.MockTransport(handler))
    info = run(manager.get_session_info("abc234"))
    assert info["session_id"] == "r1"
    assert str(seen[0].url) == "http://env-host:9000/api/v1/rooms/abc234/"
    assert seen[0].headers["Authorization"] == "Bearer spt_from_env"

    alias = sc.SpectatorRoomManager(game_server_url="http://seed-host:8000", api_token="")
    assert alias.server_url == "http://seed-host:8000" and alias.config.api_token is None
    monkeypatch.delenv("SPECTATOR_URL")
    assert sc.SpectatorManager().server_url == "http://127.0.0.1:8000"


def test_lists_follow_pagination():
    def handler(request):
        offset = int(request.url.params.get("offset", 0))
        room = {
            "room_id": f"r{offset}",
            "room_code": "ABC234",
            "training_session_id": "ts",
            "access_control": {"access_level": "public"},
        }
        following = f"http://spectator.test/api/v1/rooms/?limit=1&offset={offset + 1}" if offset < 2 else None
        return httpx.Response(200, json={"count": 3, "next": following, "results": [room]})

    rooms = sc.SpectatorRoomManager("http://spectator.test", "spt_x", transport=httpx.MockTransport(handler))
    assert [room.room_id for room in run(rooms.list_user_rooms())] == ["r0", "r1", "r2"]
