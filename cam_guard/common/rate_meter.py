"""Rates and latency percentiles over a sliding window, for diagnostics."""

import threading
import time
from collections import deque

import numpy as np


class RateMeter:
    def __init__(self, window_s: float = 2.0, max_samples: int = 1024) -> None:
        self._window_s = window_s
        self._events: deque[tuple[float, float]] = deque(maxlen=max_samples)  # (time, value)
        self._lock = threading.Lock()

    def add(self, value: float = 0.0, now: float | None = None) -> None:
        with self._lock:
            self._events.append((time.monotonic() if now is None else now, value))

    def _recent(self, now: float) -> list[tuple[float, float]]:
        return [e for e in self._events if now - e[0] <= self._window_s]

    def rate_hz(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        with self._lock:
            recent = self._recent(now)
        if len(recent) < 2:
            return 0.0
        return (len(recent) - 1) / max(1e-9, recent[-1][0] - recent[0][0])

    def percentile(self, q: float, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        with self._lock:
            values = [v for _, v in self._recent(now)]
        return float(np.percentile(values, q)) if values else 0.0
