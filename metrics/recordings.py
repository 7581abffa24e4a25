"""The recorded-episode file: one append-only file per (training session, episode).

Layout: a sequence of records, each ``>I`` body length, one kind byte, then the body:

- ``D`` (decision): the validated decision as compact JSON (``metrics.ingest.decisions_clean``
  output; a decision that came inside a metric point also carries its ``stream`` and ``seq``);
- ``F`` (frame): the frame as spectators receive it (``metrics.ingest.frame_pack``: ``>I``
  header length, JSON header, image bytes), without the session id.

Writers open the file with ``O_APPEND`` and hand each batch of records to one ``write()``, so
several server processes can append to the same episode without interleaving inside a record
(benchmarks/recording.py measured this against database rows). A reader stops at a record cut
short (a crash mid-write), so a damaged tail never hides what came before it.
"""

from __future__ import annotations

import errno
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
from django.conf import settings

from metrics.ingest import frame_pack

KIND_DECISION = b"D"
KIND_FRAME = b"F"
_RECORD = struct.Struct(">Ic")
_FRAME_HEADER = struct.Struct(">I")
FILE_SUFFIX = ".rec"


def recordings_root() -> Path:
    return Path(settings.SPECTATOR_RECORDINGS_DIR)


def episode_path(training_session_id: str, episode: int) -> str:
    """The episode's file relative to the recordings folder.

    Session ids are letters, digits and ``_ . -`` starting with a letter or digit (models), so
    they are safe as a folder name.
    """
    return f"{training_session_id}/{int(episode)}{FILE_SUFFIX}"


def absolute(path: str) -> Path:
    return recordings_root() / path


def decision_record(decision: dict) -> bytes:
    body = orjson.dumps(decision)
    return _RECORD.pack(len(body), KIND_DECISION) + body


def frame_record(header: dict, image: bytes) -> bytes:
    body = frame_pack({key: value for key, value in header.items() if key != "training_session_id"}, image)
    return _RECORD.pack(len(body), KIND_FRAME) + body


def append(path: str, data: bytes) -> None:
    """Append ``data`` to the episode's file in one ``O_APPEND`` write (creating it and its folder)."""
    target = absolute(path)
    try:
        fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    except FileNotFoundError:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        view = memoryview(data)
        while view:
            # A regular file takes the whole buffer at once; the loop only covers a short write
            # (a full disk raises instead).
            written = os.write(fd, view)
            view = view[written:]
    finally:
        os.close(fd)


def remove(path: str) -> bool:
    """Delete an episode's file; False when it was already gone (another sweep got there first)."""
    try:
        absolute(path).unlink()
    except FileNotFoundError:
        return False
    return True


def file_version(path: str) -> tuple[int, int]:
    """The file's size and modification time (ns): a reader's cache key; (0, 0) when it is gone."""
    try:
        stat = absolute(path).stat()
    except FileNotFoundError:
        return (0, 0)
    return (stat.st_size, stat.st_mtime_ns)


def file_size(path: str) -> int:
    try:
        return absolute(path).stat().st_size
    except FileNotFoundError:
        return 0


@dataclass(frozen=True)
class Entry:
    """One record as a reader sees it: decisions parsed, frames as their header and where the image is."""

    kind: bytes
    data: dict
    """The decision, or the frame's header."""
    image_offset: int = 0
    image_size: int = 0
    image: bytes | None = None
    """The image bytes, when read with ``images=True``."""


def entries(path: str, *, images: bool = False) -> Iterator[Entry]:
    """Every complete record of an episode's file, in file order; nothing when the file is gone.

    Without ``images`` the image bytes are skipped over (``image_at`` reads one), so this walks a
    file of any size in small reads.
    """
    try:
        handle = open(absolute(path), "rb")  # noqa: SIM115 - closed in finally, across yields
    except FileNotFoundError:
        return
    try:
        size = os.fstat(handle.fileno()).st_size
        offset = 0
        # Sequential reads through the buffer; a seek only to skip an image.
        while offset + _RECORD.size <= size:
            length, kind = _RECORD.unpack(handle.read(_RECORD.size))
            body_at = offset + _RECORD.size
            if body_at + length > size:
                break
            offset = body_at + length
            if kind == KIND_FRAME and length >= _FRAME_HEADER.size:
                (header_length,) = _FRAME_HEADER.unpack(handle.read(_FRAME_HEADER.size))
                image_offset = body_at + _FRAME_HEADER.size + header_length
                if image_offset > offset:
                    handle.seek(offset)
                    continue
                raw_header = handle.read(header_length)
                image_size = offset - image_offset
                image = handle.read(image_size) if images else None
                if not images:
                    handle.seek(offset)
                try:
                    yield Entry(kind, orjson.loads(raw_header), image_offset, image_size, image)
                except orjson.JSONDecodeError:
                    continue
            else:
                body = handle.read(length)
                if kind != KIND_DECISION:
                    continue
                try:
                    yield Entry(kind, orjson.loads(body))
                except orjson.JSONDecodeError:
                    continue
    finally:
        handle.close()


def image_at(path: str, offset: int, size: int) -> bytes | None:
    """The image bytes of one frame record; None when the file is gone or cut short."""
    try:
        with open(absolute(path), "rb") as handle:
            handle.seek(offset)
            data = handle.read(size)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.EISDIR):
            return None
        raise
    return data if len(data) == size else None
