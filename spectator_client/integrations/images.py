"""Game frames as compact PNG images: shrink an ``rgb_array`` frame, then encode it with zlib.

Needs numpy (Gymnasium, Stable-Baselines3 and PyTorch bring it); no imaging library.
"""

from __future__ import annotations

import math
import struct
import zlib
from typing import Any

import numpy as np

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Channels -> PNG colour type: grey, grey + alpha, RGB, RGBA.
COLOR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}


def encode_png(image: Any, *, compress_level: int = 6) -> bytes:
    """Encode an ``(H, W)`` or ``(H, W, 1-4)`` image array as PNG bytes.

    ``uint8`` values are used as they are; floats are read as 0..1 and booleans as black and
    white. Each row gets the PNG filter likely to compress it best (none, sub or up).
    Raises ``ValueError`` for an empty image or another shape.
    """
    pixels = _as_uint8(image)
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    if pixels.ndim != 3 or pixels.shape[2] not in COLOR_TYPES:
        raise ValueError(f"An image is (H, W) or (H, W, 1-4); got shape {pixels.shape}.")
    height, width, channels = pixels.shape
    if not height or not width:
        raise ValueError("The image is empty.")
    rows = _filtered_rows(pixels.reshape(height, width * channels), channels)
    header = struct.pack(">IIBBBBB", width, height, 8, COLOR_TYPES[channels], 0, 0, 0)
    return b"".join(
        (
            PNG_SIGNATURE,
            _chunk(b"IHDR", header),
            _chunk(b"IDAT", zlib.compress(rows.tobytes(), compress_level)),
            _chunk(b"IEND", b""),
        )
    )


def frame_shrink(image: Any, max_side: int | None) -> np.ndarray:
    """Shrink an image by a whole factor (averaging each block) until its longer side is at most ``max_side``."""
    pixels = np.asarray(image)
    if not max_side or pixels.ndim < 2:
        return pixels
    factor = math.ceil(max(pixels.shape[:2]) / max_side)
    if factor <= 1:
        return pixels
    height, width = pixels.shape[0] // factor, pixels.shape[1] // factor
    if not height or not width:
        return pixels
    cropped = pixels[: height * factor, : width * factor]
    blocks = cropped.reshape(height, factor, width, factor, *pixels.shape[2:])
    shrunk = blocks.mean(axis=(1, 3))
    if pixels.dtype == np.uint8:
        return np.rint(shrunk).astype(np.uint8)
    return shrunk.astype(pixels.dtype)


def _as_uint8(image: Any) -> np.ndarray:
    pixels = np.asarray(image)
    if pixels.dtype == np.uint8:
        return pixels
    if pixels.dtype == np.bool_:
        return pixels.astype(np.uint8) * 255
    if np.issubdtype(pixels.dtype, np.floating):
        return np.rint(np.clip(np.nan_to_num(pixels), 0.0, 1.0) * 255).astype(np.uint8)
    return np.clip(pixels, 0, 255).astype(np.uint8)


def _filtered_rows(raw: np.ndarray, bpp: int) -> np.ndarray:
    """Prefix every row with the filter (0 none, 1 sub, 2 up) whose bytes, read as signed, sum smallest.

    Paeth would make game frames some 8% smaller at three times the cost, in a training loop.
    """
    left = np.zeros_like(raw)
    left[:, bpp:] = raw[:, :-bpp]
    up = np.zeros_like(raw)
    up[1:] = raw[:-1]
    rows = raw.copy()
    kinds = np.zeros(raw.shape[0], dtype=np.uint8)
    best = np.abs(raw.view(np.int8)).sum(axis=1, dtype=np.int32)
    for kind, predicted in ((1, left), (2, up)):
        # uint8 arithmetic wraps modulo 256, as PNG filters do.
        filtered = raw - predicted
        cost = np.abs(filtered.view(np.int8)).sum(axis=1, dtype=np.int32)
        better = cost < best
        rows[better], kinds[better], best[better] = filtered[better], kind, cost[better]
    return np.concatenate([kinds[:, None], rows], axis=1)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
