"""Keep the server's own ASGI ``send`` in the WebSocket scope.

Channels' session middleware wraps ``send`` to save sessions on HTTP responses; on a socket
that streams thousands of messages a second that wrapper (and the session checks it makes
per message) is pure overhead. The room hub writes stream messages through the raw send.
"""

RAW_SEND_KEY = "spectator.raw_send"


class RawSendMiddleware:
    def __init__(self, application):
        self.application = application

    async def __call__(self, scope, receive, send):
        return await self.application({**scope, RAW_SEND_KEY: send}, receive, send)
