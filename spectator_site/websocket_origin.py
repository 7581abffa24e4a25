"""WebSocket origin check that lets non-browser clients in.

Browsers always send ``Origin``; a cross-site page riding a visitor's session cookie is what
the check stops, so a present Origin must be one of ALLOWED_HOSTS. Training scripts and API
clients send no Origin and authenticate with a token or a join ticket instead.
"""

from channels.security.websocket import OriginValidator
from django.conf import settings


class BrowserOriginValidator(OriginValidator):
    def valid_origin(self, parsed_origin):
        if parsed_origin is None:
            return True
        return self.validate_origin(parsed_origin)


def browser_origin_validator(application):
    allowed = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not allowed:
        allowed = ["localhost", "127.0.0.1", "[::1]"]
    return BrowserOriginValidator(application, allowed)
