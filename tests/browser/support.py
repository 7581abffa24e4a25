"""What the browser tests push and look for: images, metric points, room pages."""

from __future__ import annotations

import math
import struct
import time
import zlib

from playwright.sync_api import Page, expect

LIVE_TIMEOUT = 5000


def png(width: int, height: int, rgb_at) -> bytes:
    """A small RGB PNG, pixel colours from ``rgb_at(x, y)`` (no imaging library needed)."""
    rows = b"".join(b"\x00" + bytes(c for x in range(width) for c in rgb_at(x, y)) for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def game_frame(step: int = 0) -> bytes:
    """A CartPole-like scene: sky, ground, a cart and its pole."""
    width, height = 240, 150
    cart_x = 90 + (step * 7) % 60
    angle = math.sin(step / 3) * 0.35

    def rgb(x, y):
        if y > 118:
            return (46, 52, 64)
        if 100 <= y <= 118 and cart_x - 18 <= x <= cart_x + 18:
            return (91, 156, 255)
        # the pole, from the cart's top centre
        dy = 100 - y
        if 0 <= dy <= 60 and abs((x - cart_x) - dy * math.tan(angle)) <= 2:
            return (245, 165, 36)
        return (16 + y // 6, 20 + y // 5, 34 + y // 4)

    return png(width, height, rgb)


def solid_png(rgb: tuple[int, int, int], size: int = 32) -> bytes:
    return png(size, size, lambda x, y: rgb)


def history(count: int, *, start_episode: int = 1, algorithm: str = "DQN", total_episodes: int = 500) -> list[dict]:
    """A plausible run: rewards climbing with noise, loss falling, epsilon decaying."""
    now = time.time() - count * 2
    points = []
    for i in range(count):
        episode = start_episode + i
        noise = math.sin(episode * 1.7) * 12 + math.cos(episode * 0.61) * 7
        point = {
            "timestamp": now + i * 2,
            "episode": episode,
            "total_episodes": total_episodes,
            "current_reward": 20 + episode * 1.6 + noise,
            "average_reward": 18 + episode * 1.45,
            "best_reward": 40 + episode * 1.9,
            "episode_length": 60 + episode * 2,
            "win_rate": min(0.99, episode / 140),
            "loss_value": 1.8 * math.exp(-episode / 35) + 0.04,
            "learning_rate": 1e-3 * 0.995**episode,
            "epsilon": max(0.05, 1 - episode / 90),
            "model_generation": episode // 10,
            "algorithm": algorithm,
            "training_time_elapsed": episode * 3.4,
            "actions_per_second": 240 + math.sin(episode) * 9,
            "frames_per_second": 60 + math.cos(episode) * 1.5,
            "extra": {"td_error": 1 / (1 + episode / 20)},
        }
        points.append(point)
    return points


def open_live(page: Page, code: str) -> None:
    """Open a room that admits at once and wait until its stream is live."""
    page.goto(f"/r/{code}/")
    expect_live(page)


def expect_live(page: Page, timeout: float = LIVE_TIMEOUT) -> None:
    expect(page.locator("#screen-live")).to_be_visible(timeout=timeout)
    expect(page.locator("#conn-state")).to_have_attribute("data-state", "live", timeout=timeout)


def no_horizontal_scroll(page: Page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")
