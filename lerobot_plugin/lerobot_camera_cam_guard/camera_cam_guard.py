"""CamGuardCamera: LeRobot's Camera interface over a cam_guard ROS 2 image topic."""

import time
from typing import Any

import numpy as np
from lerobot.cameras.camera import Camera
from lerobot.cameras.configs import ColorMode
from lerobot.utils.errors import DeviceAlreadyConnectedError, DeviceNotConnectedError

from cam_guard.bridge.client import BridgeClient, BridgeError, list_image_topics, require_fresh
from cam_guard.common.frame_ring import Frame
from lerobot_camera_cam_guard.configuration_cam_guard import CamGuardCameraConfig


class CamGuardCamera(Camera):
    """Frames are H×W×3 uint8 in `color_mode` (RGB by default), stamped at capture.

    `read`/`async_read` return each frame at most once, and never one captured longer ago than the
    call's timeout (`timeout_ms`): a frame left unread through a stall is skipped, not returned late.
    A stream that is stale or gone raises TimeoutError naming the camera's state (STALLED,
    RECONNECTING, NO_PUBLISHER, …).
    """

    def __init__(self, config: CamGuardCameraConfig) -> None:
        super().__init__(config)
        self.config = config
        self._client: BridgeClient | None = None
        self._last_seq = 0

    def __str__(self) -> str:
        return f"{self.__class__.__name__}({self.config.topic})"

    @property
    def is_connected(self) -> bool:
        return self._client is not None and self._client.running

    @staticmethod
    def find_cameras() -> list[dict[str, Any]]:
        return [{"name": t["topic"], "type": "cam_guard", "id": t["topic"]} for t in list_image_topics()]

    def connect(self, warmup: bool = True) -> None:
        if self.is_connected:
            raise DeviceAlreadyConnectedError(f"{self} is already connected")
        cfg = self.config
        self._client = BridgeClient(cfg.topic, "rgb" if cfg.color_mode is ColorMode.RGB else "bgr",
                                    cfg.state_topic, "", cfg.width, cfg.height, cfg.transport)
        self._client.start()
        frame = self._first_frame(self._client, cfg.connect_timeout_ms / 1000)
        if frame is None:
            failure = "its frames are rejected" if self._client.status().error else \
                f"no frame within {cfg.connect_timeout_ms} ms"
            message = f"{self}: {failure} ({self._state()})"
            self.disconnect()
            raise ConnectionError(message)
        if frame.image.shape != (cfg.height, cfg.width, 3):
            self.disconnect()
            raise RuntimeError(f"{self}: frames are {frame.image.shape[1]}x{frame.image.shape[0]}, the config says "
                               f"{cfg.width}x{cfg.height}")
        # A new connection is a new ring, numbered from 1. With warmup the first frame is the
        # warm-up frame, already consumed; without it, the first read may return that frame.
        self._last_seq = frame.seq if warmup else 0

    @staticmethod
    def _first_frame(client: BridgeClient, timeout_s: float) -> Frame | None:
        """Waits until a frame arrives, the helper rejects frames (wrong size) or `timeout_s` ends."""
        deadline = time.monotonic() + timeout_s
        frame = None
        while frame is None and not client.status().error and (remaining := deadline - time.monotonic()) > 0:
            frame = client.wait_fresh(0, min(remaining, 0.25), max_age_s=timeout_s)
        return frame

    def _connected_client(self) -> BridgeClient:
        if self._client is None:
            raise DeviceNotConnectedError(f"{self} is not connected")
        return self._client

    def _state(self) -> str:
        return self._connected_client().describe_state()

    def _fresh(self, timeout_ms: float) -> np.ndarray:
        client = self._connected_client()
        try:
            frame = client.wait_fresh(self._last_seq, timeout_ms / 1000)
        except BridgeError as exc:
            raise DeviceNotConnectedError(f"{self}: {exc}") from None
        if frame is None:
            raise TimeoutError(f"{self}: no new frame within {timeout_ms:.0f} ms ({self._state()})")
        self._last_seq = frame.seq
        return frame.image

    def read(self, color_mode: ColorMode | None = None) -> np.ndarray:
        if color_mode is not None and ColorMode(color_mode) is not self.config.color_mode:
            raise ValueError(f"{self} delivers {self.config.color_mode.value}; set color_mode in its config")
        return self._fresh(self.config.timeout_ms)

    def async_read(self, timeout_ms: float = 200) -> np.ndarray:
        return self._fresh(timeout_ms)

    def read_latest(self, max_age_ms: int = 500) -> np.ndarray:
        try:
            frame = self._connected_client().latest()
        except BridgeError as exc:
            raise DeviceNotConnectedError(f"{self}: {exc}") from None
        require_fresh(f"frame on {self.config.topic}", None if frame is None else frame.stamp_ns, max_age_ms,
                      self._state())
        return frame.image

    def disconnect(self) -> None:
        if self._client is None:
            raise DeviceNotConnectedError(f"{self} is not connected")
        self._client.stop()
        self._client = None
