"""One activation of the camera: a capture supervisor, and the thread that hands its frames on.

camera_node makes one when it activates and stops it when it deactivates, which releases the
device (the capture worker exits). Frames are handed on from a thread of its own, newest only,
so DDS never delays the watchdog.
"""

import threading
from collections.abc import Callable

from cam_guard.capture.supervisor import CaptureSupervisor
from cam_guard.capture.watchdog import CameraState
from cam_guard.common.frame_ring import Frame
from cam_guard.common.latest import LatestValue
from cam_guard.ros.camera_parameters import CameraConfig


class CameraStream:
    def __init__(self, config: CameraConfig, publish: Callable[[Frame], bool], log: Callable[[str, str], None],
                 on_state: Callable[[CameraState, str], None]) -> None:
        self._frames: LatestValue[Frame] = LatestValue()
        self._publish = publish
        self._log = log
        self.supervisor = CaptureSupervisor(config.candidates, config.settings, config.watchdog, self._frames.put,
                                            log, on_state, config.warmup)
        self._thread = threading.Thread(target=self._publish_loop, name="camera-publisher", daemon=True)
        self.publisher_failed = False

    @property
    def dropped(self) -> int:
        """Frames replaced before the publisher thread took them."""
        return self._frames.dropped

    @property
    def failed(self) -> bool:
        return self.supervisor.failed.is_set() or self.publisher_failed

    def start(self) -> None:
        self._thread.start()
        self.supervisor.start()

    def stop(self) -> None:
        """Stop capturing (the worker exits and lets go of the device) and publishing."""
        self.supervisor.stop()
        self._frames.close()
        self._thread.join(timeout=1.0)

    def _publish_loop(self) -> None:
        try:
            while not self._frames.closed:
                frame = self._frames.take(timeout=0.2)
                if frame is not None and not self._publish(frame):
                    return  # Ctrl-C shut the context down under the publisher
        except Exception as exc:  # a dead publisher must end the node, not leave it silent
            if not self._frames.closed:
                self._log("error", f"publisher thread failed: {exc!r}")
                self.publisher_failed = True
