"""encode_png and frame_shrink: valid PNGs that decode to the same pixels, shrunk by whole factors."""

import struct
import zlib

import numpy as np
import pytest

from spectator_client.integrations.images import encode_png, frame_shrink

CHANNELS = {0: 1, 4: 2, 2: 3, 6: 4}


def png_decode(data: bytes) -> np.ndarray:
    """A small PNG reader written from the specification (8-bit, non-interlaced), checking every CRC."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    position, chunks = 8, []
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind, body = data[position + 4 : position + 8], data[position + 8 : position + 8 + length]
        (crc,) = struct.unpack(">I", data[position + 8 + length : position + 12 + length])
        assert zlib.crc32(kind + body) == crc, kind
        chunks.append((kind, body))
        position += 12 + length
    assert [kind for kind, _ in chunks][0] == b"IHDR" and chunks[-1][0] == b"IEND"
    width, height, depth, color_type, _compression, _filter, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    assert depth == 8 and interlace == 0
    channels = CHANNELS[color_type]
    raw = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    stride = width * channels
    rows = np.zeros((height, stride), dtype=np.int32)
    for y in range(height):
        line = raw[y * (stride + 1) : (y + 1) * (stride + 1)]
        kind, values = line[0], line[1:]
        for x in range(stride):
            a = rows[y, x - channels] if x >= channels else 0
            b = rows[y - 1, x] if y else 0
            c = rows[y - 1, x - channels] if y and x >= channels else 0
            if kind == 0:
                predicted = 0
            elif kind == 1:
                predicted = a
            elif kind == 2:
                predicted = b
            elif kind == 3:
                predicted = (a + b) // 2
            else:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                predicted = a if pa <= pb and pa <= pc else b if pb <= pc else c
            rows[y, x] = (values[x] + predicted) % 256
    return rows.reshape(height, width, channels).astype(np.uint8)


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_pixels_survive_the_round_trip(channels):
    rng = np.random.default_rng(channels)
    noisy = rng.integers(0, 256, size=(9, 13, channels), dtype=np.uint8)
    # Smooth areas and edges too, so every filter gets chosen somewhere.
    noisy[:4] = np.linspace(0, 255, 13, dtype=np.uint8)[None, :, None]
    noisy[6:, :5] = 200
    assert np.array_equal(png_decode(encode_png(noisy)), noisy)


def test_grey_images_float_images_and_bool_images():
    grey = np.arange(64, dtype=np.uint8).reshape(8, 8)
    assert np.array_equal(png_decode(encode_png(grey))[:, :, 0], grey)
    floats = np.array([[0.0, 0.5, 1.0, 2.0]])
    assert png_decode(encode_png(floats))[0, :, 0].tolist() == [0, 128, 255, 255]
    mask = np.array([[True, False]])
    assert png_decode(encode_png(mask))[0, :, 0].tolist() == [255, 0]


def test_flat_game_frames_compress_well():
    frame = np.zeros((400, 600, 3), dtype=np.uint8)
    frame[:] = (240, 240, 250)
    frame[250:300, 200:300] = (40, 60, 90)
    assert len(encode_png(frame)) < 5_000


@pytest.mark.parametrize("shape", [(0, 4, 3), (4, 4, 5), (4,), (2, 2, 2, 2)])
def test_other_shapes_are_refused(shape):
    with pytest.raises(ValueError):
        encode_png(np.zeros(shape, dtype=np.uint8))


def test_frames_shrink_by_whole_factors_averaging_blocks():
    frame = np.zeros((400, 600, 3), dtype=np.uint8)
    frame[:, 1::2] = 255
    small = frame_shrink(frame, 320)
    assert small.shape == (200, 300, 3) and small.dtype == np.uint8
    assert np.all(small == 128)
    assert frame_shrink(frame, 600).shape == frame.shape
    assert frame_shrink(frame, None).shape == frame.shape
