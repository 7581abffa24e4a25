"""The ingest WebSocket: ``/ws/ingest/<training_session_id>/`` for trainers (token auth).

Text messages: ``metrics`` (acked once persisted), ``decisions``, ``status``, ``ping``.
Binary messages: frames. Bad input gets an ``error`` message naming the field; the socket
stays open and nothing accepted before is lost.
"""

from __future__ import annotations

import json
import logging

import orjson
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.core.exceptions import ValidationError

from accounts.selectors import api_token_user
from metrics import services
from metrics.events import KIND_FRAME, apublish_stream, decision_items
from metrics.ingest import IngestError, decisions_clean, frame_pack, frame_parse, metric_points_clean
from metrics.models import TrainingSession
from metrics.recorder import recorder
from rooms import access
from spectator_site.faults import RETRY_AFTER_SECONDS, database_errors
from spectator_site.logging_context import LogContextConsumerMixin
from spectator_site.observability import ingest_rejections

logger = logging.getLogger(__name__)

CLOSE_SIGN_IN = 4401
CLOSE_NOT_FOUND = 4404
MAX_TEXT_MESSAGE = 4 * 1024 * 1024


def _json_parse(text: str):
    """orjson (a 1,000-point batch decodes several times faster); where orjson refuses what the
    standard decoder takes (NaN and Infinity from ``json.dumps``, integers past 64 bits) the
    standard decoder reads it, so validation names the field instead of calling it not JSON."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError):  # RecursionError: nested past the decoder's limit
        raise IngestError("message", "Not valid JSON.") from None


def _bearer_token(scope) -> str:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            parts = value.decode(errors="replace").split()
            if len(parts) == 2 and parts[0].lower() in ("bearer", "token"):
                return parts[1]
    return ""


class IngestConsumer(LogContextConsumerMixin, AsyncWebsocketConsumer):
    channel_layer_alias = "__spectator_no_layer__"

    async def connect(self):
        await self.accept()
        self.training_session = None
        session_id = self.scope["url_route"]["kwargs"]["training_session_id"]
        self.training_session, error = await database_sync_to_async(self._authorize)(session_id)
        if error:
            code, message, close_code = error
            await self.send(text_data=json.dumps({"type": "error", "code": code, "message": message}))
            await self.close(code=close_code)

    def _authorize(self, session_id):
        user = api_token_user(_bearer_token(self.scope))
        if user is None:
            return None, ("sign_in_required", "Send 'Authorization: Bearer <token>'.", CLOSE_SIGN_IN)
        session = TrainingSession.objects.filter(pk=session_id).first()
        if session is None or not access.can_ingest(user, session):
            return None, (
                "training_session_not_found",
                "No open training session of yours with that id.",
                CLOSE_NOT_FOUND,
            )
        return session, None

    async def receive(self, text_data=None, bytes_data=None):
        if self.training_session is None:
            return
        if bytes_data is not None:
            await self._frame(bytes_data)
            return
        ref = None
        try:
            if len(text_data) > MAX_TEXT_MESSAGE:
                raise IngestError("message", f"At most {MAX_TEXT_MESSAGE} bytes.")
            message = _json_parse(text_data)
            if not isinstance(message, dict):
                raise IngestError("message", "Must be a JSON object.")
            ref = message.get("ref")
            kind = message.get("type")
            if kind == "metrics":
                with ingest_rejections(message.get("points")):
                    points = metric_points_clean(message.get("points"), default_stream=str(message.get("stream") or ""))
                result = await database_sync_to_async(services.metric_points_append)(
                    training_session=self.training_session, points=points
                )
                if result.accepted:
                    await recorder.asubmit(self.training_session.pk, points=points)
                await self._send_json(
                    {
                        "type": "ack",
                        "ref": ref,
                        "accepted": result.accepted,
                        "duplicates": result.duplicates,
                        "last_seq": result.last_seq,
                    }
                )
            elif kind in ("decisions", "decision"):
                if kind == "decisions":
                    decisions = decisions_clean(message.get("decisions"))
                else:
                    decisions = decisions_clean([message], "decision")
                await apublish_stream(self.training_session.pk, decision_items(decisions))
                await recorder.asubmit(self.training_session.pk, decisions=decisions)
            elif kind == "status":
                await database_sync_to_async(services.training_session_status_set)(
                    training_session=self.training_session,
                    status=str(message.get("status", "")),
                    message=str(message.get("message", "")),
                )
                await self._send_json({"type": "ack", "ref": ref})
            elif kind == "ping":
                await self._send_json({"type": "pong", "ref": ref})
            else:
                raise IngestError("type", "Use metrics, decisions, decision, status or ping.")
        except IngestError as exc:
            await self._send_json(
                {"type": "error", "code": "invalid", "field": exc.field, "message": exc.message, "ref": ref}
            )
        except ValidationError as exc:
            field, messages = next(iter(exc.message_dict.items()))
            await self._send_json(
                {"type": "error", "code": "invalid", "field": field, "message": messages[0], "ref": ref}
            )
        except database_errors():
            # Nothing of this message was stored (one transaction); the trainer resends it.
            logger.warning("database unavailable during ingest for %s", self.training_session.pk, exc_info=True)
            await self._send_json(
                {
                    "type": "error",
                    "code": "unavailable",
                    "message": "The database is unavailable for a moment; resend this message.",
                    "retry_after": RETRY_AFTER_SECONDS,
                    "ref": ref,
                }
            )

    async def _frame(self, data: bytes) -> None:
        try:
            header, image = frame_parse(data)
        except IngestError as exc:
            await self._send_json({"type": "error", "code": "invalid", "field": exc.field, "message": exc.message})
            return
        header["training_session_id"] = self.training_session.pk
        await apublish_stream(self.training_session.pk, [(KIND_FRAME, frame_pack(header, image))])
        await recorder.asubmit(self.training_session.pk, frames=[(header, image)])

    async def _send_json(self, message: dict) -> None:
        try:
            await self.send(text_data=json.dumps(message, separators=(",", ":")))
        except OSError:
            # The trainer closed right after sending: its acknowledgement cannot go out, but
            # the messages it sent before closing are still queued here and are processed
            # (an exception here would end the consumer and drop them unread).
            logger.debug("ingest socket for %s closed before our reply", self.scope["path"])
