"""What native libraries in the capture worker print to stderr, relayed to the node's logger.

FFmpeg prints `[tcp @ 0x55d…] Connection to tcp://…:8080 failed: Connection refused` straight to
file descriptor 2, once per reconnect attempt: in a terminal that floods, and /rosout never sees
it. The worker's stderr is a pipe the supervisor reads; each line goes through here: the first
of a kind is logged at once, repeats within the window are counted and the count rides on the
next one logged, and no more than `max_lines` lines per window reach the log at all. The
supervisor's own warning for a source that keeps failing to open goes through one as well.
"""

import re
import time
from collections.abc import Callable

_ADDRESS = re.compile(r"0x[0-9a-fA-F]+")
_NUMBER = re.compile(r"\d+")


def line_kind(line: str) -> str:
    """Lines that differ only in pointers and numbers are one kind (`Corrupt JPEG data: 17 …`)."""
    return _NUMBER.sub("#", _ADDRESS.sub("@", line))


class NativeLogRelay:
    def __init__(self, emit: Callable[[str], None], window_s: float = 10.0, max_lines: int = 20,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._emit = emit
        self._window_s = window_s
        self._max_lines = max_lines
        self._clock = clock
        self._last_logged: dict[str, float] = {}  # kind -> when a line of it was last logged
        self._held: dict[str, int] = {}  # kind -> lines of it not logged since
        self._window_start = clock()
        self._logged_in_window = 0
        self.recent: list[str] = []  # the last few lines, logged or not: why an open failed

    def line(self, text: str) -> None:
        text = text.rstrip()
        if not text:
            return
        self.recent = [*self.recent, text][-3:]
        now = self._clock()
        if now - self._window_start >= self._window_s:
            self._window_start, self._logged_in_window = now, 0
        kind = line_kind(text)
        last = self._last_logged.get(kind)
        if (last is not None and now - last < self._window_s) or self._logged_in_window >= self._max_lines:
            self._held[kind] = self._held.get(kind, 0) + 1
            return
        held = self._held.pop(kind, 0)
        self._last_logged[kind] = now
        self._logged_in_window += 1
        self._emit(text + (f" (and {held} more like it since it was last logged)" if held else ""))
