"""Structured logs: who a log line is about (request id, room, training session).

The ids live in context variables, so they follow a request or a WebSocket connection across
``await``s, into ``sync_to_async`` threads (which copy the context) and into tasks started
on its behalf (a spectator's writer task). ``RequestIdMiddleware`` binds the id of each HTTP
request and echoes it as ``X-Request-ID``; ``LogContextConsumerMixin`` binds a WebSocket
connection's id and its route's ids for the connection's whole life. Every log record takes
a copy of them when it is made (``record_factory_install``, from the site's AppConfig), and
``JsonFormatter`` writes one JSON object a line (``LOG_FORMAT=json``; the default is the
plain human format).
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import uuid
from datetime import UTC, datetime

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

REQUEST_ID_HEADER = "X-Request-ID"
# A caller's id is kept when it looks like an id (a UUID, hex, a trace id); anything else is replaced.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
CONTEXT_FIELDS = ("request_id", "room_id", "room_code", "training_session_id")
_MAX_FIELD = 128

logger = logging.getLogger(__name__)

_vars: dict[str, contextvars.ContextVar[str | None]] = {
    name: contextvars.ContextVar(f"spectator_log_{name}", default=None) for name in CONTEXT_FIELDS
}


def request_id_new(incoming: str | None = None) -> str:
    """The caller's ``X-Request-ID`` when it is sane, else a fresh random id."""
    if incoming and _SANE_REQUEST_ID.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


def log_context_bind(**fields) -> None:
    """Tag the log lines of the current context (and what it starts from now on) with ``fields``."""
    for name, value in fields.items():
        _vars[name].set(None if value is None else str(value)[:_MAX_FIELD])


def log_context() -> dict[str, str]:
    """The ids bound in the current context."""
    return {name: value for name, var in _vars.items() if (value := var.get()) is not None}


class RequestIdMiddleware:
    """Bind each HTTP request's id for its log lines and answer with it in ``X-Request-ID``."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request):
        if iscoroutinefunction(self):
            return self.__acall__(request)
        token = self._bind(request)
        try:
            response = self.get_response(request)
        finally:
            _vars["request_id"].reset(token)
        response[REQUEST_ID_HEADER] = request.request_id
        return response

    async def __acall__(self, request):
        token = self._bind(request)
        try:
            response = await self.get_response(request)
        finally:
            _vars["request_id"].reset(token)
        response[REQUEST_ID_HEADER] = request.request_id
        return response

    @staticmethod
    def _bind(request) -> contextvars.Token:
        request.request_id = request_id_new(request.headers.get(REQUEST_ID_HEADER))
        return _vars["request_id"].set(request.request_id)


class LogContextConsumerMixin:
    """Tag a WebSocket consumer's log lines with a connection id and its route's ids.

    The connection id comes from the handshake's ``X-Request-ID`` when sane. Bound when the
    socket connects, in the consumer's own task, so every later handler sees them; a consumer
    adds ids it learns later (the room's id once admitted) with ``log_context_bind``.
    """

    async def websocket_connect(self, message):
        headers = dict(self.scope.get("headers") or ())
        incoming = headers.get(REQUEST_ID_HEADER.lower().encode(), b"").decode("latin-1")
        kwargs = self.scope.get("url_route", {}).get("kwargs", {})
        log_context_bind(
            request_id=request_id_new(incoming), **{name: kwargs[name] for name in CONTEXT_FIELDS if name in kwargs}
        )
        logger.debug("websocket connecting: %s", self.scope.get("path", ""))
        await super().websocket_connect(message)

    async def websocket_disconnect(self, message):
        logger.debug("websocket closed (code %s)", message.get("code"))
        await super().websocket_disconnect(message)


RECORD_ATTRIBUTE = "spectator_context"


def record_factory_install() -> None:
    """Give every log record a copy of the bound ids (as ``record.spectator_context``), once.

    A single attribute, not one per id: a call's own ``extra={"room_id": ...}`` stays possible.
    """
    previous = logging.getLogRecordFactory()
    if getattr(previous, "_spectator", False):
        return

    def factory(*args, **kwargs):
        record = previous(*args, **kwargs)
        setattr(record, RECORD_ATTRIBUTE, log_context())
        return record

    factory._spectator = True
    logging.setLogRecordFactory(factory)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: timestamp, level, logger, message, process, the bound ids, the exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.process,
        }
        bound = getattr(record, RECORD_ATTRIBUTE, None)
        if bound is None:
            bound = log_context()
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None) or bound.get(name)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str)
