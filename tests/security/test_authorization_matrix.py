"""Who may call what: every ``/api/v1/`` route and method x every role (``conftest.ROLES``).

The routes come from the URL resolver, so a new endpoint fails ``test_every_api_route_has_a_row``
until it gets a row in ``MATRIX``. Each row says the status each role gets on the gated room
(password + approval) and its training session; ``test_private_room_refusals_do_not_leak``
checks that, for everyone not allowed in, a private room answers exactly as a missing one.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from rest_framework.test import APIClient

from tests.security.conftest import RECORDED_EPISODE, ROLES, ROOM_PASSWORD, Cast
from tests.support.live import PNG, frame_bytes, point

pytestmark = pytest.mark.django_db

API_PREFIX = "api/v1/"
MANAGERS = ("owner", "moderator")
OUTSIDERS = ("pending", "banned", "stranger", "anonymous")
MISSING_CODE = "ZZZZZZ"
MISSING_SESSION = "no-such-session"


def everyone(status: int) -> dict[str, int]:
    return dict.fromkeys(ROLES, status)


def signed_in(status: int) -> dict[str, int]:
    return {**everyone(status), "anonymous": 401}


def room_managers(status: int) -> dict[str, int]:
    """The room's managers only; others see the room (403); the API needs a sign-in first (401)."""
    return {**everyone(403), **dict.fromkeys(MANAGERS, status), "anonymous": 401}


def session_managers(status: int) -> dict[str, int]:
    """The session's owner and staff; to anyone else a session looks missing (404)."""
    return {**everyone(404), **dict.fromkeys(MANAGERS, status), "anonymous": 401}


def session_viewers(status: int) -> dict[str, int]:
    """Managers and spectators admitted to one of the session's rooms; anyone else: 404."""
    return {**everyone(404), **dict.fromkeys((*MANAGERS, "spectator"), status)}


def gated(cast: Cast, **extra) -> dict:
    return {"ref": cast.gated.code, **extra}


def session(cast: Cast) -> dict:
    return {"training_session_id": cast.training_session.pk}


def recorded(cast: Cast) -> dict:
    return {"training_session_id": cast.training_session.pk, "episode": RECORDED_EPISODE}


@dataclass(frozen=True)
class Row:
    expect: dict[str, int]
    kwargs: Callable[[Cast], dict] = gated
    body: Callable[[Cast], object] | None = None
    query: Callable[[Cast], dict] = field(default=lambda cast: {})
    content_type: str = "json"


MATRIX: dict[tuple[str, str], Row] = {
    # --- Rooms ---
    ("room-list", "GET"): Row(signed_in(200), kwargs=lambda cast: {}),
    ("room-list", "POST"): Row(
        # Someone else's training session is "no such training session of yours" (400).
        {**signed_in(400), "owner": 201, "moderator": 201},
        kwargs=lambda cast: {},
        body=lambda cast: {"training_session_id": cast.training_session.pk},
    ),
    ("room-public-list", "GET"): Row(everyone(200), kwargs=lambda cast: {}),
    ("room-detail", "GET"): Row(everyone(200)),
    ("room-close", "POST"): Row(room_managers(200), body=lambda cast: {}),
    ("room-password", "POST"): Row(room_managers(200)),
    ("room-access", "PATCH"): Row(room_managers(200), body=lambda cast: {"max_spectators": 20}),
    ("room-join", "POST"): Row(
        # Managers and the admitted spectator are in; the rest with the right password wait for approval.
        {**everyone(202), "owner": 200, "moderator": 200, "spectator": 200, "banned": 403},
        body=lambda cast: {"password": ROOM_PASSWORD},
    ),
    ("room-leave", "POST"): Row(everyone(204), body=lambda cast: {}),
    ("join-request-list", "GET"): Row(room_managers(200)),
    ("join-request-approve", "POST"): Row(
        room_managers(200), kwargs=lambda cast: gated(cast, request_id=cast.join_request.pk), body=lambda cast: {}
    ),
    ("join-request-deny", "POST"): Row(
        room_managers(200), kwargs=lambda cast: gated(cast, request_id=cast.join_request.pk), body=lambda cast: {}
    ),
    ("invitation-list", "GET"): Row(room_managers(200)),
    ("invitation-list", "POST"): Row(room_managers(201), body=lambda cast: {"username": "troll"}),
    ("invitation-revoke", "DELETE"): Row(
        room_managers(204), kwargs=lambda cast: gated(cast, invitation_id=cast.invitation.pk)
    ),
    ("spectator-list", "GET"): Row({**everyone(403), **dict.fromkeys((*MANAGERS, "spectator"), 200)}),
    ("spectator-kick", "POST"): Row(
        room_managers(200), kwargs=lambda cast: gated(cast, spectator_id=cast.seats["gated"].pk)
    ),
    ("ban-list", "GET"): Row(room_managers(200)),
    ("ban-list", "POST"): Row(room_managers(201), body=lambda cast: {"username": "troll", "reason": "spam"}),
    ("ban-lift", "DELETE"): Row(room_managers(204), kwargs=lambda cast: gated(cast, ban_id=cast.bans["gated"].pk)),
    ("room-lock", "POST"): Row(room_managers(200)),
    ("room-unlock", "POST"): Row(room_managers(200)),
    ("join-request-admit-all", "POST"): Row(room_managers(200)),
    ("spectator-send-to-waiting", "POST"): Row(
        room_managers(200), kwargs=lambda cast: gated(cast, spectator_id=cast.seats["gated"].pk)
    ),
    ("moderator-list", "GET"): Row(room_managers(200)),
    ("moderator-list", "POST"): Row(room_managers(201), body=lambda cast: {"username": "troll"}),
    ("moderator-remove", "DELETE"): Row(room_managers(204), kwargs=lambda cast: gated(cast, username="helper")),
    ("timeout-list", "GET"): Row(room_managers(200)),
    ("timeout-list", "POST"): Row(
        room_managers(201), body=lambda cast: {"username": "troll", "duration_seconds": 600, "reason": "caps"}
    ),
    ("timeout-end", "DELETE"): Row(
        room_managers(204), kwargs=lambda cast: gated(cast, ban_id=cast.timeouts["gated"].pk)
    ),
    ("invite-link-list", "GET"): Row(room_managers(200)),
    ("invite-link-list", "POST"): Row(room_managers(201), body=lambda cast: {"grants_password": True}),
    ("invite-link-revoke", "DELETE"): Row(
        room_managers(204), kwargs=lambda cast: gated(cast, link_id=cast.invite_link.pk)
    ),
    ("audit-list", "GET"): Row(room_managers(200)),
    ("audit-csv", "GET"): Row(room_managers(200)),
    # --- Training sessions ---
    ("training-session-list", "GET"): Row(signed_in(200), kwargs=lambda cast: {}),
    ("training-session-list", "POST"): Row(
        # An id someone else owns is taken (400), never handed over, not even to staff.
        {**signed_in(400), "owner": 200},
        kwargs=lambda cast: {},
        body=lambda cast: {"id": cast.training_session.pk},
    ),
    ("training-session-detail", "GET"): Row(session_managers(200), kwargs=session),
    ("training-session-detail", "PATCH"): Row(
        session_managers(200), kwargs=session, body=lambda cast: {"recording": {"mode": "off"}}
    ),
    ("training-session-close", "POST"): Row(session_managers(200), kwargs=session),
    ("metrics-ingest", "POST"): Row(session_managers(200), kwargs=session, body=lambda cast: {"points": [point(1)]}),
    ("frames-ingest", "POST"): Row(
        session_managers(202),
        kwargs=session,
        body=lambda cast: frame_bytes({"mime": "image/png", "episode": 1, "step": 1}, PNG),
        content_type="application/octet-stream",
    ),
    ("training-status", "POST"): Row(session_managers(200), kwargs=session, body=lambda cast: {"status": "paused"}),
    ("metric-history", "GET"): Row(session_viewers(200), kwargs=session),
    ("metric-series", "GET"): Row(
        session_viewers(200), kwargs=session, query=lambda cast: {"metrics": "current_reward"}
    ),
    ("metric-export-csv", "GET"): Row(session_viewers(200), kwargs=session),
    ("metric-export-json", "GET"): Row(session_viewers(200), kwargs=session),
    ("metric-export-ndjson", "GET"): Row(session_viewers(200), kwargs=session),
    ("training-session-summary", "GET"): Row(session_viewers(200), kwargs=session),
    ("training-session-comparison", "GET"): Row(
        session_viewers(200),
        kwargs=lambda cast: {},
        query=lambda cast: {"sessions": f"{cast.training_session.pk},{cast.second_session.pk}"},
    ),
    # --- Recorded episodes ---
    ("recorded-episode-list", "GET"): Row(session_viewers(200), kwargs=session),
    ("recorded-episode-detail", "GET"): Row(session_viewers(200), kwargs=recorded),
    ("recorded-episode-detail", "DELETE"): Row({**session_managers(204), "anonymous": 404}, kwargs=recorded),
    ("recorded-episode-export", "GET"): Row(session_viewers(200), kwargs=recorded),
}


def api_routes() -> set[tuple[str, str]]:
    """(route name, method) for every URL pattern under /api/v1/, read from the resolver."""
    found = set()

    def walk(patterns, prefix: str) -> None:
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, route)
            elif isinstance(pattern, URLPattern) and route.startswith(API_PREFIX):
                view_class = getattr(pattern.callback, "view_class", None) or pattern.callback.cls
                for method in view_class.http_method_names:
                    if method not in ("head", "options", "trace") and hasattr(view_class, method):
                        found.add((pattern.name, method.upper()))

    walk(get_resolver().url_patterns, "")
    return found


def test_every_api_route_has_a_row():
    routes = api_routes()
    assert len(routes) >= 30, routes
    missing = sorted(routes - MATRIX.keys())
    stale = sorted(MATRIX.keys() - routes)
    assert not missing, f"API routes without an authorization matrix row: {missing}"
    assert not stale, f"Matrix rows for routes that no longer exist: {stale}"


def client_for(cast: Cast, role: str) -> APIClient:
    client = APIClient()
    if role != "anonymous":
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {cast.token(role)}")
    return client


def call(client: APIClient, method: str, path: str, row: Row, cast: Cast, query: dict | None = None):
    query = row.query(cast) if query is None else query
    if query:
        path = f"{path}?{'&'.join(f'{key}={value}' for key, value in query.items())}"
    if row.body is None:
        return client.generic(method, path)
    body = row.body(cast)
    if row.content_type == "json":
        return getattr(client, method.lower())(path, body, format="json")
    return client.generic(method, path, body, content_type=row.content_type)


def assert_error_shape(response) -> None:
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    assert isinstance(body.get("error"), str) and body["error"], body
    assert isinstance(body.get("detail"), str) and body["detail"], body


def check_role(cast: Cast, name: str, method: str, role: str) -> None:
    row = MATRIX[(name, method)]
    path = reverse(name, kwargs=row.kwargs(cast))

    response = call(client_for(cast, role), method, path, row, cast)

    expected = row.expect[role]
    assert response.status_code == expected, (role, method, path, response.status_code, response.content[:300])
    if response.status_code >= 400:
        assert_error_shape(response)
    if role not in ("owner", "moderator", "spectator"):
        # Nothing a non-member gets back names the private room.
        body = b"".join(response.streaming_content) if response.streaming else response.content
        assert cast.private.code.encode() not in body
        assert str(cast.private.pk).encode() not in body


READS = sorted(key for key in MATRIX if key[1] == "GET")
WRITES = sorted((name, method, role) for name, method in MATRIX if method != "GET" for role in ROLES)


@pytest.mark.parametrize(("name", "method"), READS, ids=[f"{n}-{m}" for n, m in READS])
def test_roles_reading(cast, name, method, subtests):
    # Reads change nothing, so one cast serves every role.
    for role in ROLES:
        with subtests.test(role=role):
            check_role(cast, name, method, role)


@pytest.mark.parametrize(("name", "method", "role"), WRITES, ids=["-".join(key) for key in WRITES])
def test_role_writing(cast, name, method, role):
    # A fresh cast for each role: one role's write (closing, kicking, banning) must not decide another's.
    check_role(cast, name, method, role)


def test_listings_show_outsiders_nothing_of_the_owners(cast):
    for role in ("spectator", *OUTSIDERS[:-1]):
        client = client_for(cast, role)
        rooms = client.get("/api/v1/rooms/?include_ended=1").json()
        assert rooms["results"] == [], (role, rooms)
        sessions = client.get("/api/v1/sessions/").json()
        assert cast.training_session.pk not in str(sessions), (role, sessions)
    public = APIClient().get("/api/v1/rooms/public/").json()
    listed = {room["room_code"] for room in public["results"]}
    assert cast.private.code not in listed and cast.gated.code in listed


# --- A private room looks missing ------------------------------------------------------------


def private_kwargs(cast: Cast, name: str, ref: str) -> dict:
    kwargs = MATRIX_KWARGS_FOR_PRIVATE.get(name, lambda cast: {})(cast)
    return {**kwargs, "ref": ref}


MATRIX_KWARGS_FOR_PRIVATE: dict[str, Callable[[Cast], dict]] = {
    "join-request-approve": lambda cast: {"request_id": cast.join_request.pk},
    "join-request-deny": lambda cast: {"request_id": cast.join_request.pk},
    "invitation-revoke": lambda cast: {"invitation_id": cast.invitation.pk},
    "spectator-kick": lambda cast: {"spectator_id": cast.seats["private"].pk},
    "ban-lift": lambda cast: {"ban_id": cast.bans["private"].pk},
    "spectator-send-to-waiting": lambda cast: {"spectator_id": cast.seats["private"].pk},
    "moderator-remove": lambda cast: {"username": "helper"},
    "timeout-end": lambda cast: {"ban_id": cast.timeouts["private"].pk},
    "invite-link-revoke": lambda cast: {"link_id": cast.invite_link.pk},
}


def ref_routes() -> list[tuple[str, str]]:
    return sorted(key for key in MATRIX if "<str:ref>" in _route_of(key[0]))


def _route_of(name: str) -> str:
    for pattern in get_resolver().url_patterns:
        if isinstance(pattern, URLResolver) and str(pattern.pattern) == API_PREFIX:
            for inner in pattern.url_patterns:
                if getattr(inner, "name", None) == name:
                    return str(inner.pattern)
    return ""


def _without_ids(content: bytes, *ids: str) -> bytes:
    for value in ids:
        content = content.replace(value.encode(), b"<ref>")
    return content


@pytest.mark.parametrize(("name", "method"), ref_routes(), ids=[f"{n}-{m}" for n, m in ref_routes()])
def test_private_room_refusals_do_not_leak(cast, name, method):
    # Refusals change nothing, so one cast serves every role and both kinds of reference.
    row = MATRIX[(name, method)]
    for role in OUTSIDERS:
        client = client_for(cast, role)
        refs = ((cast.private.code, MISSING_CODE), (str(cast.private.pk), str(uuid.uuid4())))
        for private_ref, missing_ref in refs:
            private = call(client, method, reverse(name, kwargs=private_kwargs(cast, name, private_ref)), row, cast)
            missing = call(client, method, reverse(name, kwargs=private_kwargs(cast, name, missing_ref)), row, cast)

            assert private.status_code in (401, 404), (role, private.status_code, private.content[:300])
            assert private.status_code == missing.status_code, role
            assert _without_ids(private.content, private_ref) == _without_ids(missing.content, missing_ref), role
            assert private.get("Retry-After") == missing.get("Retry-After")


SESSION_ROUTES = sorted(key for key, row in MATRIX.items() if row.kwargs in (session, recorded))


@pytest.mark.parametrize(("name", "method"), SESSION_ROUTES, ids=[f"{n}-{m}" for n, m in SESSION_ROUTES])
def test_someone_elses_training_session_looks_missing(cast, name, method):
    row = MATRIX[(name, method)]
    real = cast.training_session.pk
    refused = [role for role in ("spectator", *OUTSIDERS) if row.expect[role] >= 400]
    assert refused
    for role in refused:
        client = client_for(cast, role)
        kwargs = row.kwargs(cast)
        theirs = call(client, method, reverse(name, kwargs={**kwargs, "training_session_id": real}), row, cast)
        missing = call(
            client, method, reverse(name, kwargs={**kwargs, "training_session_id": MISSING_SESSION}), row, cast
        )

        assert theirs.status_code == missing.status_code == row.expect[role], role
        assert _without_ids(theirs.content, real) == _without_ids(missing.content, MISSING_SESSION), role


def test_comparison_of_someone_elses_session_looks_missing(cast):
    client = client_for(cast, "stranger")
    mine = "stranger-run"
    from metrics.services import training_session_create

    training_session_create(owner=cast.users["stranger"], id=mine)
    theirs = client.get(f"/api/v1/compare/?sessions={mine},{cast.training_session.pk}")
    missing = client.get(f"/api/v1/compare/?sessions={mine},{MISSING_SESSION}")
    assert theirs.status_code == missing.status_code == 404
    assert re.sub(rf"{cast.training_session.pk}|{MISSING_SESSION}", "<id>", theirs.content.decode()) == re.sub(
        rf"{cast.training_session.pk}|{MISSING_SESSION}", "<id>", missing.content.decode()
    )
