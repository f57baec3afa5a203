"""camera_node's parameters and the configuration built from them (checked without a node).

Which change needs what: watchdog timings apply at once; capture settings go to a fresh capture
worker (the state topic says RECONFIGURING meanwhile); publishing settings apply to the next frame.
"""

from dataclasses import dataclass
from typing import Any

from sensor_msgs.msg import CameraInfo

from cam_guard.capture.credentials import read_credentials
from cam_guard.capture.sources import CaptureSettings, SourceError, SourceSpec
from cam_guard.capture.supervisor import candidate_sources
from cam_guard.capture.watchdog import WatchdogConfig
from cam_guard.ros.camera_info import load_calibration
from cam_guard.ros.parameters import ConfigError, Param, ParameterTable
from cam_guard.ros.transport import QOS_CHOICES

# Changing any of these hands the source to a new capture worker.
CAPTURE = frozenset({"device", "fallback_devices", "scan_video_devices", "credentials", "width", "height", "fps",
                     "fourcc", "buffer_size", "warmup"})
WATCHDOG = frozenset({"stall_timeout", "open_timeout", "reconnect_backoff_max", "max_reconnect_attempts"})


STALL_TIMEOUT_RANGE = (0.05, 30.0)
# The worker's own FFmpeg read timeout is a backstop only: the watchdog kills a stalled worker after
# stall_timeout, so the backstop must exceed any stall_timeout, including one set live later.
WORKER_READ_TIMEOUT_MS = int(2 * STALL_TIMEOUT_RANGE[1] * 1000)


def _check_fourcc(fourcc: str) -> None:
    if len(fourcc) != 4:
        raise ConfigError(f"parameter 'fourcc' = '{fourcc}' must be 4 characters, e.g. MJPG")


def _check_credentials(reference: str) -> None:
    try:
        read_credentials(reference)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


PARAMETERS = ParameterTable([
    Param("device", "auto", "'auto' (first /dev/video*, else synthetic), 'synthetic', a V4L2 index, /dev/video*, "
          "/dev/v4l/by-id/..., a URL or a video file", dynamic_typing=True),
    Param("fallback_devices", [""], "sources recovery may switch to, in order"),
    Param("scan_video_devices", True, "let recovery try other /dev/video* devices"),
    Param("credentials", "", "where a URL camera's user:password is: env:VARIABLE or file:/path (keeps the "
          "password out of parameters, logs and topics)", check=_check_credentials),
    Param("width", 640, "requested frame width", int_range=(16, 7680)),
    Param("height", 480, "requested frame height", int_range=(16, 4320)),
    Param("fps", 30.0, "requested frame rate", float_range=(1.0, 240.0)),
    Param("fourcc", "MJPG", "requested pixel format (V4L2 devices)", check=_check_fourcc),
    Param("buffer_size", 1, "driver buffers (V4L2); 1 = newest frame only", int_range=(1, 16)),
    Param("encoding", "bgr8", "image_raw encoding", choices=("bgr8", "rgb8")),
    Param("frame_id", "", "header.frame_id of every message; '' = camera, or <name>_camera in namespace /<name>"),
    Param("qos", "reliable", "QoS of image topics", choices=QOS_CHOICES,
          fixed="subscribers matched the publishers' QoS; restart the node to change it"),
    Param("publish_compressed", True, "publish image_raw/compressed when the camera sends JPEG"),
    Param("camera_info_url", "", "calibration YAML (file:///path.yaml)"),
    Param("stall_timeout", 0.5, "seconds without a good frame = stalled", float_range=STALL_TIMEOUT_RANGE),
    Param("open_timeout", 3.0, "seconds an open may take to give a frame", float_range=(0.1, 60.0)),
    Param("reconnect_backoff_max", 1.0, "longest pause between attempts", float_range=(0.1, 60.0)),
    Param("max_reconnect_attempts", 0, "failed attempts in a row before exiting non-zero; 0 = forever",
          int_range=(0, 1_000_000)),
    Param("warmup", -1.0, "seconds of frames withheld after each open while the camera settles; -1 = by source: "
          "0.5 for V4L2 cameras, 0 otherwise", float_range=(-1.0, 30.0)),
    Param("autostart", True, "configure and activate at start-up (false: wait for the lifecycle services)",
          fixed="it only matters at start-up"),
])


@dataclass(frozen=True)
class CameraConfig:
    device: str
    candidates: list[SourceSpec]
    settings: CaptureSettings
    watchdog: WatchdogConfig
    encoding: str
    frame_id: str
    qos: str
    publish_compressed: bool
    calibration: CameraInfo | None
    autostart: bool
    warmup: float


def build(values: dict[str, Any]) -> CameraConfig:
    try:
        candidates = candidate_sources(values["device"], [d for d in values["fallback_devices"] if d],
                                       values["scan_video_devices"])
    except SourceError as exc:
        raise ConfigError(str(exc)) from None
    calibration = None
    if values["camera_info_url"]:
        try:
            calibration = load_calibration(values["camera_info_url"])
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    watchdog = WatchdogConfig(stall_timeout=values["stall_timeout"], open_timeout=values["open_timeout"],
                              backoff_max=values["reconnect_backoff_max"],
                              max_attempts=values["max_reconnect_attempts"])
    settings = CaptureSettings(width=values["width"], height=values["height"], fps=values["fps"],
                               fourcc=values["fourcc"], buffer_size=values["buffer_size"],
                               open_timeout_ms=int(watchdog.open_timeout * 1000),
                               read_timeout_ms=WORKER_READ_TIMEOUT_MS, credentials=values["credentials"])
    return CameraConfig(values["device"], candidates, settings, watchdog, values["encoding"], values["frame_id"],
                        values["qos"], values["publish_compressed"], calibration, values["autostart"],
                        values["warmup"])
