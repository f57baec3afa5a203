"""Bounded polling for tests, benches and the browser client (no ROS)."""

import time
from collections.abc import Callable
from typing import Any


def poll(probe: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    """Call `probe` every `interval` s until it returns something truthy; return that."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what} (last value {value!r})")
        time.sleep(interval)
