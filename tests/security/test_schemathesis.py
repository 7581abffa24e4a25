"""Property-based checks of the whole API against its own OpenAPI schema (``/api/schema/``).

Schemathesis generates requests for every operation (valid and invalid), sends them to the
WSGI app as the owner (bearer token) and checks that no answer is a 5xx and that every answer
matches what the schema documents (status code, content type, body). Path parameters are
drawn half the time from the cast's real rooms, sessions and ids, so the checks reach the
views' code rather than stopping at 404. Bounded and derandomized: the same examples each run.
"""

from __future__ import annotations

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

pytestmark = pytest.mark.django_db

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def real_values(cast) -> dict[str, list]:
    """Path parameter values that name real things of the cast."""
    return {
        "ref": [cast.gated.code, cast.private.code, str(cast.gated.pk), cast.gated.code.lower()],
        "training_session_id": [cast.training_session.pk, cast.second_session.pk],
        "request_id": [cast.join_request.pk],
        "invitation_id": [cast.invitation.pk],
        "spectator_id": [cast.seats["gated"].pk],
        "ban_id": [cast.bans["gated"].pk],
        "episode": [1],
    }


# Filled for each test by ``_real_values``; the hook reads it when it draws.
REAL_VALUES: dict[str, list] = {}


def wsgi_app_keeping_the_connection():
    """The WSGI app, keeping the test's database connection open across requests.

    Django closes "old" connections when a request starts and finishes; its test client turns
    that off (the test's transaction lives on the connection), and so does this.
    """
    handler = get_wsgi_application()

    def app(environ, start_response):
        request_started.disconnect(close_old_connections)
        request_finished.disconnect(close_old_connections)
        try:
            response = handler(environ, start_response)
            try:
                return [b"".join(response)]
            finally:
                response.close()
        finally:
            request_started.connect(close_old_connections)
            request_finished.connect(close_old_connections)

    return app


schema = schemathesis.openapi.from_wsgi("/api/schema/", wsgi_app_keeping_the_connection())


@schema.hook
def flatmap_path_parameters(context, path_parameters):
    if not path_parameters:
        return st.just(path_parameters)
    real = {
        name: st.sampled_from(REAL_VALUES[name]) if name in REAL_VALUES else st.just(value)
        for name, value in path_parameters.items()
    }
    return st.one_of(st.just(path_parameters), st.fixed_dictionaries(real))


@pytest.fixture(autouse=True)
def _real_values(cast):
    REAL_VALUES.update(real_values(cast))
    yield
    REAL_VALUES.clear()


@schema.parametrize()
@settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_matches_its_schema(case, cast):
    case.call_and_validate(headers={"Authorization": f"Bearer {cast.token('owner')}"}, checks=CHECKS)


# --- Bodies the generator does not reach -------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ("[" * 5000, "application/json"),
        ('{"points":' * 2000 + "1" + "}" * 2000, "application/json"),
        ("&".join(f"f{index}=1" for index in range(1500)), "application/x-www-form-urlencoded"),
    ],
    ids=["deep-array", "deep-object", "too-many-form-fields"],
)
def test_unparseable_bodies_get_the_json_400(cast, api_client, body, content_type):
    client = api_client(token=cast.token("owner"))
    for path in (f"/api/v1/sessions/{cast.training_session.pk}/ingest/", "/api/v1/rooms/"):
        response = client.generic("POST", path, body, content_type=content_type)
        assert response.status_code == 400, (path, response.content[:200])
        assert response.json()["error"] in ("parse_error", "bad_request"), response.json()
