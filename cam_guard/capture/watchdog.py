"""The camera watchdog as a pure state machine: no threads, no clocks of its own, no OpenCV.

The supervisor feeds it events (a good frame, a fault, a reconnect attempt) with the time they
happened; it answers when the next deadline is, whether to give up, and how long to back off.
"""

import enum
import statistics
from collections import deque
from dataclasses import dataclass


class CameraState(enum.Enum):
    STARTING = "STARTING"
    WARMING_UP = "WARMING_UP"  # opened and delivering, frames withheld while exposure and white balance settle
    STREAMING = "STREAMING"
    STALLED = "STALLED"
    RECONFIGURING = "RECONFIGURING"  # new capture settings: a fresh worker is opening the source
    RECONNECTING = "RECONNECTING"
    FAILED = "FAILED"
    STOPPED = "STOPPED"


@dataclass(frozen=True)
class WatchdogConfig:
    stall_timeout: float = 0.5  # no good frame for this long while streaming = stalled
    open_timeout: float = 3.0  # an attempt that yields no frame within this is a failed attempt
    backoff_initial: float = 0.1
    backoff_max: float = 1.0
    max_attempts: int = 0  # consecutive failed attempts before FAILED; 0 = retry forever

    def __post_init__(self) -> None:
        if self.stall_timeout <= 0 or self.open_timeout <= 0:
            raise ValueError("stall_timeout and open_timeout must be > 0")
        if self.backoff_initial < 0 or self.backoff_max < self.backoff_initial:
            raise ValueError("need 0 <= backoff_initial <= backoff_max")
        if self.max_attempts < 0:
            raise ValueError("max_attempts must be >= 0")


def _summary(values: deque[float]) -> tuple[float, float, float]:
    """(last, median, worst) in seconds; zeros when nothing was recorded."""
    if not values:
        return 0.0, 0.0, 0.0
    return values[-1], statistics.median(values), max(values)


class Watchdog:
    def __init__(self, config: WatchdogConfig, now: float) -> None:
        self.config = config
        self.state = CameraState.STARTING
        self.reason = "opening"
        self.frames = 0
        self.stalls = 0
        self.reconnect_attempts = 0
        self.recoveries = 0
        self.failed_attempts = 0  # consecutive, reset by a good frame
        self.warmup_frames = 0  # good frames withheld while warming up
        self._last_frame_at: float | None = None
        self._attempt_started_at = now
        self._warmup = 0.0
        self._warm_at = 0.0
        self._fault_at: float | None = None
        self.detect_times: deque[float] = deque(maxlen=256)
        self.recover_times: deque[float] = deque(maxlen=256)

    def deadline(self) -> float:
        """When the current wait turns into a fault if no good frame arrives first."""
        if self.state in (CameraState.STREAMING, CameraState.WARMING_UP) and self._last_frame_at is not None:
            return self._last_frame_at + self.config.stall_timeout
        return self._attempt_started_at + self.config.open_timeout

    def on_frame(self, now: float) -> bool:
        """A good frame arrived; True if it is to be published (False while warming up)."""
        self._last_frame_at = now
        if self.state is not CameraState.STREAMING and self.state is not CameraState.WARMING_UP:
            self._warm_at = now + self._warmup  # the first frame of this open: settling starts now
            if self._warmup > 0:
                self.state = CameraState.WARMING_UP
                self.reason = f"withholding frames for {self._warmup:.2f} s after opening while the camera settles"
        if self.state is CameraState.WARMING_UP and now < self._warm_at:
            self.warmup_frames += 1
            return False
        if self.state is not CameraState.STREAMING and self._fault_at is not None:
            self.recover_times.append(now - self._fault_at)
            self.recoveries += 1
            self._fault_at = None
        self.state = CameraState.STREAMING
        self.reason = ""
        self.frames += 1
        self.failed_attempts = 0
        return True

    def on_fault(self, now: float, reason: str) -> None:
        """The source stalled, failed or vanished (or an open attempt got nowhere)."""
        self.reason = reason
        if self.state is CameraState.STREAMING:
            self.stalls += 1
            assert self._last_frame_at is not None
            self.detect_times.append(now - self._last_frame_at)
            self._fault_at = now
            self.state = CameraState.STALLED
            return
        # The first open failed, or the camera quit while warming up: an attempt that got nowhere.
        self.failed_attempts += 1
        if self.state in (CameraState.STARTING, CameraState.WARMING_UP, CameraState.RECONFIGURING):
            self.state = CameraState.RECONNECTING
        if self.config.max_attempts and self.failed_attempts >= self.config.max_attempts:
            self.state = CameraState.FAILED
            self.reason = f"gave up after {self.failed_attempts} failed attempts: {reason}"

    def backoff(self) -> float:
        """Pause before the next attempt: none right after a stall, then doubling up to the cap."""
        if self.failed_attempts == 0:
            return 0.0
        return min(self.config.backoff_initial * 2 ** (self.failed_attempts - 1), self.config.backoff_max)

    def on_reconfigure(self, now: float) -> None:
        """New capture settings: the next attempt is a fresh start, not a failure (no back-off, not counted)."""
        self.state = CameraState.RECONFIGURING
        self.reason = "applying new settings"
        self.failed_attempts = 0
        self._fault_at = None
        self._attempt_started_at = now

    def on_attempt(self, now: float, warmup: float = 0.0) -> None:
        """An open starts now; its first `warmup` seconds of frames will be withheld."""
        if self.state not in (CameraState.STARTING, CameraState.RECONFIGURING):
            self.state = CameraState.RECONNECTING
            self.reconnect_attempts += 1
        self._attempt_started_at = now
        self._warmup = warmup

    def fail(self, reason: str) -> None:
        """Give up now, whatever the state (the supervisor itself broke)."""
        self.state = CameraState.FAILED
        self.reason = reason

    def stop(self) -> None:
        self.state = CameraState.STOPPED
        self.reason = "stopped"

    def frame_age(self, now: float) -> float | None:
        return None if self._last_frame_at is None else now - self._last_frame_at

    def detect_summary(self) -> tuple[float, float, float]:
        return _summary(self.detect_times)

    def recover_summary(self) -> tuple[float, float, float]:
        return _summary(self.recover_times)
