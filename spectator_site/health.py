"""``/healthz``: is the database answering, and is the channel layer delivering?"""

import asyncio
import logging
import secrets

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.db import connection
from django.http import JsonResponse

from spectator_site.observability import database_error_count

logger = logging.getLogger(__name__)
CHECK_TIMEOUT = 3.0


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone() == (1,)
    except Exception as exc:
        database_error_count(exc)
        logger.warning("health check: database unavailable", exc_info=True)
        return False
    finally:
        connection.close_if_unusable_or_obsolete()


async def _channel_layer_ok() -> bool:
    """Send a message to a fresh channel and read it back through the layer."""
    layer = get_channel_layer()
    if layer is None:
        return False
    try:
        channel = await asyncio.wait_for(layer.new_channel("healthz."), CHECK_TIMEOUT)
        token = secrets.token_hex(8)
        await asyncio.wait_for(layer.send(channel, {"type": "healthz", "token": token}), CHECK_TIMEOUT)
        message = await asyncio.wait_for(layer.receive(channel), CHECK_TIMEOUT)
        return message.get("token") == token
    except Exception:
        logger.warning("health check: channel layer unavailable", exc_info=True)
        return False


async def healthz(request):
    database = await sync_to_async(_database_ok, thread_sensitive=True)()
    layer = await _channel_layer_ok()
    healthy = database and layer
    body = {
        "status": "ok" if healthy else "unavailable",
        "database": "ok" if database else "unavailable",
        "channel_layer": "ok" if layer else "unavailable",
    }
    return JsonResponse(body, status=200 if healthy else 503)
