"""What the web page shows besides the picture: the /state.json document. No ROS here.

preview_node feeds it what it already knows (each overlay's OverlayInfo per camera, each reward,
each camera_node diagnostic); the page polls it and keeps its own copy of the probability
history, asking only for points newer than the last one it has. Times are the server's wall clock
(seconds since the epoch), so the page's plot does not depend on the browser's clock.

A camera_node's diagnostics belong to the image topic in the same namespace (/front/camera and
/front/image_raw); with one camera and one camera_node they belong together whatever the names.
"""

import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

from cam_guard.common.rate_meter import RateMeter
from cam_guard.preview.overlay import OverlayInfo

HISTORY_S = 60.0
DIAGNOSTIC_PREFIX = "cam_guard: "  # camera_node names its status "cam_guard: <node name>"
# The counters of a camera_node diagnostic (cam_guard.ros.diagnostics) the page shows.
CAMERA_KEYS = {"rate_hz": float, "stalls": int, "reconnect_attempts": int, "recoveries": int}
LEVELS = {0: "OK", 1: "WARN", 2: "ERROR", 3: "STALE"}


@dataclass
class _Diagnostic:
    node: str
    level: str
    message: str
    counters: dict[str, Any]
    received: float


def _parse(text: str, kind: type) -> Any:
    try:
        return kind(text)
    except ValueError:
        return None


def _namespace(name: str) -> str:
    return name.rpartition("/")[0]


class PreviewState:
    def __init__(self, cameras: list[tuple[str, str]], history_s: float = HISTORY_S) -> None:
        """`cameras`: (label, image topic) of each camera, in the order the overlays' infos come."""
        self._cameras = cameras
        self._history_s = history_s
        self._lock = threading.Lock()
        self._infos: list[OverlayInfo] | None = None
        self._drawn_at = 0.0
        self._drawn = RateMeter()
        self._reward: tuple[float, float, float, bool] | None = None  # stamp, probability, threshold, success
        self._history: deque[tuple[float, float]] = deque()  # (stamp, probability)
        self._diagnostics: dict[str, _Diagnostic] = {}

    def drawn(self, infos: list[OverlayInfo], now: float) -> None:
        """An overlay was drawn at `now`, with one `info` per camera."""
        self._drawn.add()
        with self._lock:
            self._infos, self._drawn_at = infos, now

    def reward(self, stamp: float, probability: float, threshold: float, success: bool) -> None:
        """A reward for the frame(s) captured at `stamp`."""
        with self._lock:
            self._reward = (stamp, probability, threshold, success)
            if not self._history or stamp > self._history[-1][0]:
                self._history.append((stamp, probability))
            while self._history and self._history[0][0] < stamp - self._history_s:
                self._history.popleft()

    def diagnostic(self, name: str, level: int, message: str, values: dict[str, str], now: float) -> None:
        """One DiagnosticStatus; kept if it is a camera_node's (it carries the recovery counters)."""
        if "reconnect_attempts" not in values:
            return
        node = name.removeprefix(DIAGNOSTIC_PREFIX)
        counters = {key: _parse(values.get(key, ""), kind) for key, kind in CAMERA_KEYS.items()}
        with self._lock:
            self._diagnostics[node] = _Diagnostic(node, LEVELS.get(level, str(level)), message, counters, now)

    def _diagnostic_for(self, image_topic: str) -> _Diagnostic | None:
        diagnostics = list(self._diagnostics.values())
        if len(self._cameras) == 1 and len(diagnostics) == 1:
            return diagnostics[0]
        return next((d for d in diagnostics if _namespace(d.node) == _namespace(image_topic)), None)

    def snapshot(self, since: float, now: float) -> dict[str, Any]:
        """The state as JSON-ready data, with the probabilities of frames captured after `since`."""
        with self._lock:
            infos, drawn_at, reward = self._infos, self._drawn_at, self._reward
            history = [[t, p] for t, p in self._history if t > since]
            diagnostics = [self._diagnostic_for(topic) for _, topic in self._cameras]
        cameras = []
        for i, ((label, topic), diagnostic) in enumerate(zip(self._cameras, diagnostics, strict=True)):
            info = infos[i] if infos else None
            age = None if info is None or info.frame_age_s is None else info.frame_age_s + (now - drawn_at)
            camera: dict[str, Any] = {
                "label": label, "image_topic": topic, "camera_state": info.camera_state if info else "UNKNOWN",
                "fps": info.fps if info else 0.0, "frame_age_s": age,
                "stale": info is None or age is None or age > info.stale_after_s}
            if diagnostic is not None:
                camera.update(node=diagnostic.node, level=diagnostic.level, message=diagnostic.message,
                              status_age_s=now - diagnostic.received, **diagnostic.counters)
            cameras.append(camera)
        return {
            "now": now,
            "cameras": cameras,
            "preview_fps": self._drawn.rate_hz(),
            "probability": reward[1] if reward else None,
            "threshold": reward[2] if reward else (infos[0].threshold if infos else None),
            "success": reward[3] if reward else False,
            "reward_age_s": now - reward[0] if reward else None,
            "history": history,
        }
