"""Which frames the reward model sees together: one per camera, taken at the same moment. No ROS here.

Each camera keeps its last few frames with their capture stamps. A set is formed around the *pivot*,
the camera whose newest frame is the oldest: every other camera has delivered past that moment, so
the frames a set around it needs are already here and nothing needs to wait. Of the sets holding the
pivot's frame, the one whose stamps lie closest together is taken; it is classified when they lie
within `max_skew` of each other, and skipped (counted) otherwise. A new set is considered only when the
pivot moves on, and only from frames newer than each camera's in the last set classified (one set per
moment), so a camera that stops delivering stops the reward instead of pairing its last frame with
ever newer frames of the others.

With cameras at different rates, a set around a faster camera's frame that falls between a slower
camera's frames may be wide: it is passed over, neither classified nor counted, and the set around the
slower camera's next frame decides.

Free-running cameras at the same rate keep their phases: N of them can lie up to (N-1)/N of a period
apart however the set is chosen (4 cameras evenly out of phase at 30 fps: 25 ms), and a fixed bound
below that would skip every set for as long as they run. So `max_skew` 0 (the default) means *auto*:
(N-1)/N of the cameras' measured frame period plus 3 ms of stamp jitter (2 cameras at 30 fps: 19.7 ms,
4: 28 ms), never more than 0.9 of a period: a frame one whole period off is another moment.
"""

import itertools
import statistics
import threading
from collections import deque
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

HISTORY = 4  # frames kept per camera: ~130 ms at 30 fps, more than cameras' delivery delays differ by
STREAMING = "STREAMING"
NO_FRAME = "NO_FRAME"  # nothing received yet
LATE = "LATE"  # the newest frame is older than `late_after`, whatever the camera last said
SKEWED = "SKEWED"  # its frame was too far from the others' in the last set
CLASSIFYING = "CLASSIFYING"
LATE_AFTER_NS = 500_000_000  # as camera_node's default stall_timeout
AUTO = 0  # max_skew_ns: from the cameras' frame periods
AUTO_JITTER_NS = 3_000_000  # capture-stamp jitter on top of the phase spread
FALLBACK_SKEW_NS = 20_000_000  # auto before every camera has sent two frames: two 30 fps cameras' bound


def auto_skew_ns(periods_ns: list[int | None]) -> int:
    """The auto bound for cameras with these frame periods (None: not measured yet). With different
    rates the second-longest period counts: the sets that decide are those around the slowest
    camera's frames, and the others' frames lie around those at their own periods."""
    known = sorted(p for p in periods_ns if p is not None)
    cameras = len(known)
    if cameras < len(periods_ns) or cameras < 2:  # one camera: every set is one frame
        return FALLBACK_SKEW_NS
    period = known[-2]
    return min(period * (cameras - 1) // cameras + AUTO_JITTER_NS, period * 9 // 10)


@dataclass(frozen=True)
class FrameSet(Generic[T]):
    """One frame per camera, in camera order."""

    items: list[T]
    stamps_ns: list[int]

    @property
    def skew_ns(self) -> int:
        return max(self.stamps_ns) - min(self.stamps_ns)


@dataclass(frozen=True)
class SkippedSet:
    """The best set around the pivot spread wider than `max_skew`: not classified."""

    stamps_ns: list[int]
    farthest: int  # the camera whose frame lies farthest from the others' (the one behind on a tie)

    @property
    def skew_ns(self) -> int:
        return max(self.stamps_ns) - min(self.stamps_ns)


class _Entry(Generic[T]):
    __slots__ = ("item", "stamp_ns", "used")

    def __init__(self, stamp_ns: int, item: T) -> None:
        self.stamp_ns = stamp_ns
        self.item = item
        self.used = False


class FrameGrouper(Generic[T]):
    """Thread-safe: cameras `add()` from callbacks, the classifier thread `take()`s."""

    def __init__(self, cameras: int, max_skew_ns: int, late_after_ns: int = LATE_AFTER_NS,
                 history: int = HISTORY) -> None:
        if cameras < 1:
            raise ValueError("a frame set needs at least one camera")
        self.max_skew_ns = max_skew_ns  # set live by the node; AUTO: see effective_skew_ns
        self._late_after_ns = late_after_ns
        self._history: list[deque[_Entry[T]]] = [deque(maxlen=history) for _ in range(cameras)]
        self._states: list[str | None] = [None] * cameras  # None: the camera never said
        self._lock = threading.Lock()
        self._last_pivot: tuple[int, int] | None = None
        self._last_set: tuple[int, ...] | None = None  # the last set decided, classified or not
        self._last_classified: tuple[int, ...] | None = None  # its frames are never classified again
        self.received = [0] * cameras
        self.dropped = 0  # frames superseded before any set took them (the classifier was busy)
        self.skipped = 0  # sets spread wider than max_skew

    def add(self, camera: int, stamp_ns: int, item: T) -> None:
        with self._lock:
            self._history[camera].append(_Entry(stamp_ns, item))
            self.received[camera] += 1

    def set_state(self, camera: int, state: str) -> None:
        with self._lock:
            self._states[camera] = state

    def problems(self, now_ns: int) -> list[tuple[int, str]]:
        """Cameras that keep sets from being classified, and why: the camera's own state when it
        says it is not STREAMING, NO_FRAME before its first frame, LATE when its newest frame is
        older than `late_after` (a camera that died without a word, or one that has no state topic)."""
        found = []
        with self._lock:
            for camera, (history, state) in enumerate(zip(self._history, self._states, strict=True)):
                if state is not None and state != STREAMING:
                    found.append((camera, state))
                elif not history:
                    found.append((camera, NO_FRAME))
                elif now_ns - history[-1].stamp_ns > self._late_after_ns:
                    found.append((camera, LATE))
        return found

    def effective_skew_ns(self) -> int:
        with self._lock:
            return self._effective_skew_ns([_period_ns(h) for h in self._history])

    def _effective_skew_ns(self, periods_ns: list[int | None]) -> int:
        return auto_skew_ns(periods_ns) if self.max_skew_ns == AUTO else self.max_skew_ns

    def take(self) -> FrameSet[T] | SkippedSet | None:
        """The newest set not decided before, or None (no new pivot, or a camera is not streaming)."""
        with self._lock:
            if any(not h for h in self._history) or any(s not in (None, STREAMING) for s in self._states):
                return None
            newest = [h[-1].stamp_ns for h in self._history]
            pivot_camera = min(range(len(newest)), key=newest.__getitem__)
            pivot = (pivot_camera, newest[pivot_camera])
            if pivot == self._last_pivot:
                return None
            self._last_pivot = pivot
            # One set per moment: every camera's frame newer than in the last set classified, so a
            # camera's frame is classified once and the reward's rate is at most the cameras'.
            used = self._last_classified
            fresh = [[e for e in h if used is None or e.stamp_ns > used[c]] for c, h in enumerate(self._history)]
            if any(not f for f in fresh):
                return None
            chosen = _closest_set(fresh, pivot_camera)
            stamps = [e.stamp_ns for e in chosen]
            if tuple(stamps) == self._last_set:
                return None  # the pivot moved to another camera's frame of the same moment
            self._last_set = tuple(stamps)
            self._retire_older_than(chosen)
            periods = [_period_ns(h) for h in self._history]
            if max(stamps) - min(stamps) > self._effective_skew_ns(periods):
                if _faster_than_another(pivot_camera, periods):
                    return None  # between a slower camera's frames: the set around its next frame decides
                self.skipped += 1
                middle = statistics.median(stamps)  # ties go to the camera behind, the usual culprit
                farthest = max(range(len(stamps)), key=lambda c: (abs(stamps[c] - middle), -stamps[c]))
                return SkippedSet(stamps, farthest)
            self._last_classified = tuple(stamps)
            return FrameSet([e.item for e in chosen], stamps)

    def _retire_older_than(self, chosen: list[_Entry[T]]) -> None:
        """Frames before the chosen ones will never be in a set: count the unused ones as dropped."""
        for history, pick in zip(self._history, chosen, strict=True):
            for entry in history:
                if entry is pick:
                    break
                if not entry.used:
                    entry.used = True
                    self.dropped += 1
            pick.used = True


def _period_ns(history: deque[_Entry[T]]) -> int | None:
    """A camera's frame period: the median gap between the frames kept (a dropped frame is one gap)."""
    stamps = [e.stamp_ns for e in history]
    gaps = [b - a for a, b in itertools.pairwise(stamps) if b > a]
    return int(statistics.median(gaps)) if gaps else None


def _faster_than_another(camera: int, periods_ns: list[int | None]) -> bool:
    """Whether `camera` delivers clearly more often than some other camera (measured periods)."""
    own = periods_ns[camera]
    return own is not None and any(p is not None and own < p * 9 // 10 for p in periods_ns)


def _closest_set(histories: list[list[_Entry[T]]], pivot_camera: int) -> list[_Entry[T]]:
    """One frame per camera, the pivot camera's newest among them, spread as little as possible.

    The narrowest window holding the pivot's frame and a frame of every other camera is found by
    trying each frame no newer than the pivot's as its start; each other camera then gives its newest
    frame inside it (not its oldest: a later pivot must never take an older frame than this set did)."""
    pivot = histories[pivot_camera][-1]
    others = [h for camera, h in enumerate(histories) if camera != pivot_camera]
    window: tuple[int, int] | None = None
    for start in sorted({e.stamp_ns for h in histories for e in h if e.stamp_ns <= pivot.stamp_ns}):
        end = max([pivot.stamp_ns] + [min(e.stamp_ns for e in h if e.stamp_ns >= start) for h in others])
        if window is None or end - start <= window[1] - window[0]:  # on a tie, the later window: fresher
            window = (start, end)
    assert window is not None  # the pivot's own frame is a start
    start, end = window
    return [pivot if camera == pivot_camera else
            max((e for e in history if start <= e.stamp_ns <= end), key=lambda e: e.stamp_ns)
            for camera, history in enumerate(histories)]


def reward_state(labels: list[str], problems: list[tuple[int, str]], last: FrameSet | SkippedSet | None,
                 previous: str) -> str:
    """What reward/state says: `CLASSIFYING`, or which camera holds the reward up and why
    (`wrist STALLED`, `front NO_FRAME, wrist LATE`, `wrist SKEWED`)."""
    if problems:
        return ", ".join(f"{labels[camera]} {why}" for camera, why in problems)
    if isinstance(last, SkippedSet):
        return f"{labels[last.farthest]} {SKEWED}"
    if isinstance(last, FrameSet):
        return CLASSIFYING
    return previous
