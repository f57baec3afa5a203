"""How often the preview draws: at most `max_rate` overlays a second on average. No ROS here.

Frames of a 30 fps camera reach the preview 23–43 ms apart (DDS delivery and thread wake-ups
jitter around the 33 ms period). The old rule "draw only if 1/max_rate has passed since the
last draw" dropped every frame that came a little early: 40% of them at max_rate 30
(bench/RESULTS.md). A token bucket holding `burst` draws lets an early frame through and still
bounds the draws in any interval T by max_rate × T + burst, without delaying any frame.
"""


class DrawPacer:
    def __init__(self, max_rate: float, burst: float = 3.0) -> None:
        if max_rate <= 0 or burst < 1:
            raise ValueError(f"need max_rate > 0 and burst >= 1, got {max_rate}, {burst}")
        self._rate = max_rate
        self._burst = burst
        self._tokens = burst
        self._last: float | None = None

    def admit(self, now: float) -> bool:
        """True if a frame arriving at `now` (monotonic seconds) is to be drawn; it is then counted."""
        if self._last is not None:
            self._tokens = min(self._burst, self._tokens + (now - self._last) * self._rate)
        self._last = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True
