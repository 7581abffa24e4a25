"""``/healthz``: 200 when the database and the channel layer answer, 503 naming what is down."""

import socket

import pytest
from channels.layers import channel_layers
from django.db import OperationalError, connection

# Real transactions: the check recycles its database connection as it does in production,
# which would break the rollback-wrapped connection of an ordinary django_db test.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def fresh_channel_layers():
    """Drop channels' cached layer instances so overridden CHANNEL_LAYERS take effect, and after."""
    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


def closed_loopback_port() -> int:
    """A loopback port nothing listens on: bound, then released."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_healthy(client, fresh_channel_layers):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"status": "ok", "database": "ok", "channel_layer": "ok"}


def test_healthz_needs_no_sign_in_and_uses_no_session(client, fresh_channel_layers):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert "sessionid" not in response.cookies


def test_channel_layer_on_a_closed_port_is_unavailable(client, settings, fresh_channel_layers):
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [f"redis://127.0.0.1:{closed_loopback_port()}/0"]},
        }
    }
    channel_layers.backends.clear()

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "database": "ok", "channel_layer": "unavailable"}


def test_no_channel_layer_configured_is_unavailable(client, settings, fresh_channel_layers):
    settings.CHANNEL_LAYERS = {}
    channel_layers.backends.clear()

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["channel_layer"] == "unavailable"


def test_database_unavailable(client, monkeypatch, fresh_channel_layers):
    # The database server is outside the project; make the connection refuse as a dead one would.
    def refuse(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(connection, "cursor", refuse)

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "database": "unavailable", "channel_layer": "ok"}


def test_recovers_once_the_layer_is_back(client, settings, fresh_channel_layers):
    original = settings.CHANNEL_LAYERS
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [f"redis://127.0.0.1:{closed_loopback_port()}/0"]},
        }
    }
    channel_layers.backends.clear()
    assert client.get("/healthz").status_code == 503

    settings.CHANNEL_LAYERS = original
    channel_layers.backends.clear()
    assert client.get("/healthz").status_code == 200
