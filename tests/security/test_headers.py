"""Security headers on every page we render, and HSTS only behind TLS (``SPECTATOR_TLS``).

``tests/spectator_site/test_security_headers.py`` covers the API, the admin and the docs page.
"""

from __future__ import annotations

import os

import pytest
from django.test import Client

from tests.spectator_site.test_security_headers import csp_directives
from tests.support.servers import python_json

pytestmark = pytest.mark.django_db


@pytest.fixture
def pages(make_room, owner):
    room = make_room(name="Room")
    ended = make_room(name="Ended")
    from rooms.services import room_close

    room_close(room=ended, actor=owner)
    client = Client()
    client.force_login(owner)
    return client, [
        "/",
        f"/r/{room.code}/",
        f"/r/{ended.code}/",
        "/r/ZZZZZZ/",
        "/r/?code=nope",
        "/my/",
        "/my/rooms/new/",
        f"/my/rooms/{room.code}/",
        "/compare/",
        "/accounts/login/",
    ]


def test_every_page_has_a_strict_policy_and_no_framing(pages):
    client, paths = pages
    for path in paths:
        response = client.get(path)
        assert response.status_code < 500, path
        assert response["X-Frame-Options"] == "DENY", path
        assert response["X-Content-Type-Options"] == "nosniff", path
        assert response["Referrer-Policy"] == "same-origin", path
        directives = csp_directives(response)
        assert directives["frame-ancestors"] == ["'none'"], path
        assert directives["script-src"] == ["'self'"], path
        for name in ("script-src", "style-src", "default-src"):
            assert "'unsafe-inline'" not in directives.get(name, []), (path, name)
            assert "'unsafe-eval'" not in directives.get(name, []), (path, name)
        assert "Strict-Transport-Security" not in response, path


def test_pages_have_no_inline_script_or_handlers(pages):
    import re

    client, paths = pages
    for path in paths:
        body = client.get(path).content.decode()
        for attributes, content in re.findall(r"<script\b([^>]*)>(.*?)</script>", body, re.S):
            if "src=" in attributes or 'type="application/json"' in attributes:
                continue
            assert not content.strip(), (path, content[:80])
        assert not re.search(r"\son[a-z]+\s*=", body), path
        assert "javascript:" not in body, path


# SecurityMiddleware reads its settings when the client's handler loads it: a new Client each time.


def test_hsts_only_on_secure_requests_when_configured(settings):
    settings.SECURE_HSTS_SECONDS = 3600
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    client = Client()
    assert client.get("/", secure=True)["Strict-Transport-Security"] == "max-age=3600; includeSubDomains"
    assert "Strict-Transport-Security" not in client.get("/")

    settings.SECURE_HSTS_SECONDS = 0
    assert "Strict-Transport-Security" not in Client().get("/", secure=True)


def test_tls_setup_redirects_plain_http_and_trusts_the_proxy_header(settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 3600
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    client = Client()
    plain = client.get("/")
    assert plain.status_code == 301 and plain["Location"].startswith("https://")
    behind_proxy = client.get("/", HTTP_X_FORWARDED_PROTO="https")
    assert behind_proxy.status_code == 200
    assert "max-age=3600" in behind_proxy["Strict-Transport-Security"]


PRINT_TLS = """
import json
from django.conf import settings
print(json.dumps({
    "hsts": settings.SECURE_HSTS_SECONDS,
    "redirect": settings.SECURE_SSL_REDIRECT,
    "session_cookie_secure": settings.SESSION_COOKIE_SECURE,
    "csrf_cookie_secure": settings.CSRF_COOKIE_SECURE,
    "proxy_header": settings.SECURE_PROXY_SSL_HEADER,
}))
"""


def tls_settings(tmp_path, **env) -> dict:
    clean = {key: value for key, value in os.environ.items() if not key.startswith(("SECURE_", "SPECTATOR_TLS"))}
    clean.update(
        DJANGO_SETTINGS_MODULE="spectator_site.settings",
        SPECTATOR_DATA_DIR=str(tmp_path),
        SECRET_KEY="test-only-secret",
        **env,
    )
    return python_json(f"import django; django.setup()\n{PRINT_TLS}", clean)


def test_environment_switches_tls_settings(tmp_path):
    plain = tls_settings(tmp_path)
    assert plain["hsts"] == 0 and plain["redirect"] is False
    assert plain["session_cookie_secure"] is False and plain["proxy_header"] is None

    tls = tls_settings(tmp_path, SPECTATOR_TLS="1")
    assert tls["hsts"] == 31_536_000 and tls["redirect"] is True
    assert tls["session_cookie_secure"] is True and tls["csrf_cookie_secure"] is True
    assert tls["proxy_header"] == ["HTTP_X_FORWARDED_PROTO", "https"]

    tuned = tls_settings(tmp_path, SPECTATOR_TLS="1", SECURE_HSTS_SECONDS="600", SECURE_SSL_REDIRECT="0")
    assert tuned["hsts"] == 600 and tuned["redirect"] is False
