"""Security headers on pages and API responses, and the settings the environment selects."""

import os
import re

import pytest

pytestmark = pytest.mark.django_db

from tests.support.servers import python_json


def csp_directives(response) -> dict[str, list[str]]:
    policy = response["Content-Security-Policy"]
    directives = {}
    for part in policy.split(";"):
        name, *sources = part.split()
        directives[name] = sources
    return directives


def assert_common_headers(response, *, opener_policy="same-origin") -> None:
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == opener_policy
    directives = csp_directives(response)
    assert directives["frame-ancestors"] == ["'none'"]
    assert directives["object-src"] == ["'none'"]


def assert_strict_csp(response) -> None:
    directives = csp_directives(response)
    assert directives["script-src"] == ["'self'"]
    assert directives["default-src"] == ["'self'"]
    for sources in directives.values():
        assert "'unsafe-inline'" not in sources
        assert "'unsafe-eval'" not in sources
        assert "*" not in sources


@pytest.mark.parametrize(
    "path",
    ["/healthz", "/api/v1/rooms/public/", "/api/schema/", "/no-such-page/", "/api/v1/rooms/NOPE22/"],
)
def test_pages_and_api_forbid_inline_script(client, path):
    response = client.get(path)
    assert response.status_code in (200, 404)
    assert_common_headers(response)
    assert_strict_csp(response)


def test_json_api_responses_carry_the_headers(api_client, owner, training_session):
    client = api_client(owner)
    created = client.post(
        "/api/v1/rooms/", {"training_session_id": training_session.id}, format="json", HTTP_ACCEPT="application/json"
    )
    assert created.status_code == 201
    assert created["Content-Type"].startswith("application/json")
    assert_common_headers(created)
    assert_strict_csp(created)

    refused = api_client().post(f"/api/v1/rooms/{created.json()['room_code']}/join/", {"display_name": "x" * 100})
    assert refused.status_code == 400
    assert refused.json()["error"] == "validation_error"
    assert_common_headers(refused)
    assert_strict_csp(refused)


def test_unauthenticated_api_error_carries_the_headers(api_client):
    response = api_client().get("/api/v1/rooms/", HTTP_ACCEPT="application/json")
    assert response.status_code in (401, 403)
    assert_common_headers(response)
    assert_strict_csp(response)


def test_browsable_api_has_strict_csp_and_no_inline_script(client):
    response = client.get("/api/v1/rooms/public/", HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert_strict_csp(response)
    # The strict policy would block an inline script; make sure the page does not need one.
    for attributes, body in re.findall(r"<script\b([^>]*)>(.*?)</script>", response.content.decode(), re.S):
        if "src=" in attributes or 'type="application/json"' in attributes:
            continue
        assert not body.strip(), f"inline script in the browsable API: {body[:80]!r}"


@pytest.mark.parametrize(
    ("path", "opener_policy"),
    # Swagger UI sets its own opener policy so its OAuth2 sign-in popup can report back.
    [("/admin/login/", "same-origin"), ("/api/docs/", "unsafe-none")],
)
def test_admin_and_docs_keep_framing_and_plugins_off(client, path, opener_policy):
    # Django's admin and Swagger UI ship inline scripts, so they get a narrower policy.
    response = client.get(path)
    assert response.status_code == 200
    assert_common_headers(response, opener_policy=opener_policy)


def test_headers_do_not_override_a_view_that_set_its_own(rf):
    from django.http import HttpResponse

    from spectator_site.middleware import SecurityHeadersMiddleware

    own = "default-src 'none'"

    def view(request):
        response = HttpResponse("ok")
        response["Content-Security-Policy"] = own
        return response

    response = SecurityHeadersMiddleware(view)(rf.get("/somewhere/"))
    assert response["Content-Security-Policy"] == own
    assert response["Permissions-Policy"] == "camera=(), microphone=(), geolocation=()"


# --- Settings chosen by the environment -----------------------------------------------------------

PRINT_BACKENDS = """
import json
from django.conf import settings
print(json.dumps({
    "engine": settings.DATABASES["default"]["ENGINE"],
    "database_name": str(settings.DATABASES["default"]["NAME"]),
    "is_postgres": settings.DATABASE_IS_POSTGRES,
    "channel_layer": settings.CHANNEL_LAYERS["default"]["BACKEND"],
    "channel_hosts": settings.CHANNEL_LAYERS["default"].get("CONFIG", {}).get("hosts"),
    "cache": settings.CACHES["default"]["BACKEND"],
    "debug": settings.DEBUG,
}))
"""


def settings_with(tmp_path, **env) -> dict:
    clean = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "REDIS_URL", "DEBUG", "SECRET_KEY", "SPECTATOR_DATA_DIR"}
    }
    clean.update(DJANGO_SETTINGS_MODULE="spectator_site.settings", SPECTATOR_DATA_DIR=str(tmp_path), **env)
    return python_json(PRINT_BACKENDS, clean)


def test_no_environment_means_sqlite_and_in_memory_layer(tmp_path):
    chosen = settings_with(tmp_path)
    assert chosen["engine"] == "django.db.backends.sqlite3"
    assert chosen["database_name"] == str(tmp_path / "db.sqlite3")
    assert chosen["is_postgres"] is False
    assert chosen["channel_layer"] == "channels.layers.InMemoryChannelLayer"
    assert chosen["cache"] == "django.core.cache.backends.locmem.LocMemCache"
    assert chosen["debug"] is False
    # A generated secret key is kept for the next start, readable by the owner only.
    key_file = tmp_path / "secret_key"
    assert key_file.read_text().strip()
    assert key_file.stat().st_mode & 0o077 == 0


def test_database_and_redis_urls_select_postgres_and_channels_redis(tmp_path):
    chosen = settings_with(
        tmp_path,
        DATABASE_URL="postgres://spectator:pw@127.0.0.1:5432/spectator",
        REDIS_URL="redis://127.0.0.1:6379/3",
        SECRET_KEY="test-only-secret",
    )
    assert chosen["engine"] == "django.db.backends.postgresql"
    assert chosen["database_name"] == "spectator"
    assert chosen["is_postgres"] is True
    assert chosen["channel_layer"] == "channels_redis.core.RedisChannelLayer"
    assert chosen["channel_hosts"] == ["redis://127.0.0.1:6379/3"]
    assert chosen["cache"] == "django.core.cache.backends.redis.RedisCache"
    assert not (tmp_path / "secret_key").exists()
