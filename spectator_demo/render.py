"""Draw CartPole with numpy: smooth (anti-aliased) shapes on a small canvas, no pygame needed."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

X_LIMIT = 2.4  # the cart's track ends where CartPole's episode ends
ANGLE_LIMIT = 12 * 2 * np.pi / 360  # and so does the pole's tilt
POLE_LENGTH = 1.0  # Gymnasium's CartPole: half-length 0.5

SKY_TOP, SKY_BOTTOM = np.array([214, 231, 246]), np.array([246, 249, 252])
GROUND = np.array([206, 196, 178])
TRACK = np.array([90, 84, 76])
LIMIT = np.array([200, 70, 60])
CART = np.array([46, 64, 87])
WHEEL = np.array([30, 30, 34])
POLE_CALM, POLE_DANGER = np.array([222, 150, 60]), np.array([214, 58, 48])
AXLE = np.array([236, 236, 240])
PUSH = np.array([64, 150, 110])

# A signed distance from a shape's edge (negative inside) for pixel-centre coordinates.
Distance = Callable[[np.ndarray, np.ndarray], np.ndarray]


class CartPoleRenderer:
    """Render CartPole states as ``(height, width, 3)`` uint8 arrays (about 2 ms each at 360 x 240)."""

    def __init__(self, width: int = 360, height: int = 240):
        self.width, self.height = width, height
        self.scale = width / (2 * X_LIMIT * 1.1)
        self.track_y = height * 0.74
        ys = np.arange(height, dtype=np.float32)[:, None, None] + 0.5
        sky = SKY_TOP + (SKY_BOTTOM - SKY_TOP) * (ys / self.track_y)
        background = np.broadcast_to(np.where(ys > self.track_y, GROUND, sky), (height, width, 3))
        self.background = background.astype(np.float32)
        for edge in (-X_LIMIT, X_LIMIT):
            x = self._x(edge)
            self._paint(
                self.background,
                (x - 3, self.track_y - 16, x + 3, self.track_y + 8),
                _segment(x, self.track_y - 14, x, self.track_y + 6, 1.5),
                LIMIT,
            )
        self._paint(
            self.background,
            (0, self.track_y - 3, width, self.track_y + 3),
            lambda xs, ys: np.abs(ys - self.track_y) - 1.2,
            TRACK,
        )

    def render(self, state, action: int | None = None) -> np.ndarray:
        """Draw one state ``(x, x_dot, theta, theta_dot)``; an arrow shows the push when ``action`` is given."""
        x, _x_dot, theta, _theta_dot = (float(value) for value in state)
        canvas = self.background.copy()
        cx = self._x(x)
        cart_w, cart_h = 0.5 * self.scale, 0.3 * self.scale
        cy = self.track_y - cart_h / 2 - 5
        wheel_y = self.track_y - 4
        for wheel_x in (cx - cart_w * 0.3, cx + cart_w * 0.3):
            self._paint(
                canvas, (wheel_x - 7, wheel_y - 7, wheel_x + 7, wheel_y + 7), _circle(wheel_x, wheel_y, 5), WHEEL
            )
        cart_box = (cx - cart_w / 2 - 2, cy - cart_h / 2 - 2, cx + cart_w / 2 + 2, cy + cart_h / 2 + 2)
        self._paint(canvas, cart_box, _rounded_box(cx, cy, cart_w / 2, cart_h / 2, 5), CART)
        if action is not None:
            direction = 1 if action == 1 else -1
            start, end = cx + direction * (cart_w / 2 + 6), cx + direction * (cart_w / 2 + 34)
            arrow_box = (min(start, end) - 2, cy - 11, max(start, end) + 2, cy + 11)
            self._paint(canvas, arrow_box, _segment(start, cy, start + direction * 16, cy, 2.5), PUSH)
            self._paint(canvas, arrow_box, _arrow_head(start + direction * 24, cy, direction), PUSH)
        danger = min(abs(theta) / ANGLE_LIMIT, 1.0)
        axle_y = cy - cart_h * 0.25
        tip_x = cx + np.sin(theta) * POLE_LENGTH * self.scale
        tip_y = axle_y - np.cos(theta) * POLE_LENGTH * self.scale
        half_width = 0.05 * self.scale
        pole_box = (min(cx, tip_x) - 8, min(axle_y, tip_y) - 8, max(cx, tip_x) + 8, max(axle_y, tip_y) + 8)
        pole_color = POLE_CALM + (POLE_DANGER - POLE_CALM) * danger
        self._paint(canvas, pole_box, _segment(cx, axle_y, tip_x, tip_y, half_width), pole_color)
        self._paint(canvas, (cx - 6, axle_y - 6, cx + 6, axle_y + 6), _circle(cx, axle_y, 4), AXLE)
        return canvas.astype(np.uint8)

    def _x(self, world_x: float) -> float:
        return self.width / 2 + world_x * self.scale

    def _paint(self, canvas: np.ndarray, box: tuple[float, float, float, float], distance: Distance, color) -> None:
        """Blend ``color`` in where ``distance`` is negative inside ``box``, with a one-pixel soft edge."""
        left, top = max(int(box[0]), 0), max(int(box[1]), 0)
        right, bottom = min(int(np.ceil(box[2])) + 1, self.width), min(int(np.ceil(box[3])) + 1, self.height)
        if left >= right or top >= bottom:
            return
        ys, xs = np.mgrid[top:bottom, left:right].astype(np.float32) + 0.5
        coverage = np.clip(0.5 - distance(xs, ys), 0.0, 1.0)[..., None]
        region = canvas[top:bottom, left:right]
        region += (np.asarray(color, dtype=np.float32) - region) * coverage


def _circle(cx: float, cy: float, radius: float) -> Distance:
    return lambda xs, ys: np.hypot(xs - cx, ys - cy) - radius


def _segment(x0: float, y0: float, x1: float, y1: float, half_width: float) -> Distance:
    def distance(xs, ys):
        dx, dy = x1 - x0, y1 - y0
        t = np.clip(((xs - x0) * dx + (ys - y0) * dy) / max(dx * dx + dy * dy, 1e-9), 0.0, 1.0)
        return np.hypot(xs - (x0 + t * dx), ys - (y0 + t * dy)) - half_width

    return distance


def _rounded_box(cx: float, cy: float, half_w: float, half_h: float, radius: float) -> Distance:
    def distance(xs, ys):
        qx, qy = np.abs(xs - cx) - half_w + radius, np.abs(ys - cy) - half_h + radius
        outside = np.hypot(np.maximum(qx, 0), np.maximum(qy, 0))
        return outside + np.minimum(np.maximum(qx, qy), 0) - radius

    return distance


def _arrow_head(tip_x: float, tip_y: float, direction: int, size: float = 9.0) -> Distance:
    """A triangle pointing left or right: the larger of its back edge's and its two slanted edges' distances."""

    def distance(xs, ys):
        local_x, local_y = (xs - tip_x) * direction, ys - tip_y
        return np.maximum(-(local_x + size), (local_x + np.abs(local_y)) / np.sqrt(2.0))

    return distance
