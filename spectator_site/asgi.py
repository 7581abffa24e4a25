"""ASGI entry point: HTTP through Django, WebSockets through Channels' router."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "spectator_site.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402

from rooms.sweeper import sweeper_start  # noqa: E402
from spectator_site.gc_tuning import tune_gc  # noqa: E402
from spectator_site.raw_send import RawSendMiddleware  # noqa: E402
from spectator_site.routing import websocket_urlpatterns  # noqa: E402
from spectator_site.websocket_origin import browser_origin_validator  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": RawSendMiddleware(browser_origin_validator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns)))),
    }
)

sweeper_start()
tune_gc(full_interval=settings.SPECTATOR_GC_FULL_INTERVAL)
