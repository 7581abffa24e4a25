"""Helpers shared by the client tests."""

from __future__ import annotations

import asyncio
import time

from tests.support.servers import free_port

__all__ = ["free_port", "run", "wait_for"]


def wait_for(predicate, timeout: float, interval: float = 0.02, message: str = "condition"):
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


def run(coro):
    """Run a coroutine to completion on a fresh event loop (the suite has no pytest-asyncio)."""
    return asyncio.run(coro)
