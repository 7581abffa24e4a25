"""Game frames on the wire: 4-byte big-endian header length, a JSON header, the image bytes."""

from __future__ import annotations

import json
import struct
import time
from typing import Any

FRAME_MIMES = {"image/png": b"\x89PNG\r\n\x1a\n", "image/jpeg": b"\xff\xd8\xff", "image/webp": b"RIFF"}


def frame_mime_guess(image: bytes) -> str:
    """Name the image type from its first bytes; raises ``ValueError`` for anything but PNG, JPEG, WebP."""
    for mime, magic in FRAME_MIMES.items():
        if image.startswith(magic):
            return mime
    raise ValueError("A frame must be a PNG, JPEG or WebP image.")


def frame_pack(
    image: bytes,
    mime: str | None = None,
    *,
    episode: int | None = None,
    step: int | None = None,
    timestamp: float | None = None,
) -> bytes:
    """Build one binary frame message; raises ``ValueError`` for an empty image or an unknown type."""
    image = bytes(image)
    if not image:
        raise ValueError("The image is empty.")
    mime = mime or frame_mime_guess(image)
    if mime not in FRAME_MIMES:
        raise ValueError(f"mime must be one of: {', '.join(FRAME_MIMES)}.")
    header = {
        "type": "frame",
        "mime": mime,
        "episode": episode,
        "step": step,
        "timestamp": time.time() if timestamp is None else float(timestamp),
    }
    raw = json.dumps(header, separators=(",", ":")).encode()
    return struct.pack(">I", len(raw)) + raw + image


def frame_parse(message: bytes) -> tuple[dict[str, Any], bytes]:
    """Split a binary frame message into its header and image; raises ``ValueError`` when malformed."""
    if len(message) < 4:
        raise ValueError("Too short for a frame.")
    (length,) = struct.unpack(">I", message[:4])
    if not 0 < length <= len(message) - 4:
        raise ValueError("Frame header length is outside the message.")
    header = json.loads(message[4 : 4 + length])
    if not isinstance(header, dict):
        raise ValueError("Frame header is not an object.")
    return header, bytes(message[4 + length :])
