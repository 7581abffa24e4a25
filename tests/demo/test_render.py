"""The demo's frames: drawn with numpy, small PNGs that follow the state."""

import numpy as np

from spectator_client.integrations.images import encode_png
from spectator_demo.render import CartPoleRenderer


def test_frames_follow_the_cart_and_the_pole():
    renderer = CartPoleRenderer(width=360, height=240)
    centred = renderer.render((0.0, 0.0, 0.0, 0.0))
    moved = renderer.render((1.5, 0.0, 0.0, 0.0))
    tilted = renderer.render((0.0, 0.0, 0.15, 0.0))
    assert centred.shape == (240, 360, 3) and centred.dtype == np.uint8
    # The cart is dark: where it stands, the middle of the track is dark in one frame and not the other.
    cart_row = int(renderer.track_y) - 14
    assert centred[cart_row, 180].max() < 100 and moved[cart_row, 180].min() > 150
    assert not np.array_equal(centred, tilted)


def test_frames_are_small_pngs():
    png = encode_png(CartPoleRenderer().render((0.3, 0.0, -0.1, 0.0), action=0))
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(png) < 20_000
