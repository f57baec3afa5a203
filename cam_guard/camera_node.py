"""camera_node: publishes a camera that is watched, restarted and never silently dead.

Capture happens in a worker process (see capture_supervisor); this node only publishes the
newest frame it hands over, each topic from a thread of its own (ros.publishing), so neither DDS
nor one topic's readers delay the watchdog or another topic.
"""

import threading

import cv2
from diagnostic_msgs.msg import DiagnosticArray, KeyValue
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import String

from cam_guard.capture.sources import CaptureSettings, SourceError
from cam_guard.capture.supervisor import CaptureSupervisor, candidate_sources
from cam_guard.capture.watchdog import CameraState, WatchdogConfig
from cam_guard.common.frame_ring import Frame
from cam_guard.ros import control_parameters
from cam_guard.ros.camera_info import camera_info_for, load_calibration
from cam_guard.ros.cell import default_frame_id
from cam_guard.ros.diagnostics import camera_diagnostic
from cam_guard.ros.image_conversion import stamp_from_ns, to_compressed_msg, to_image_msg
from cam_guard.ros.parameters import LiveParameters
from cam_guard.ros.publishing import ReaderLag, TopicPublisher
from cam_guard.ros.runtime import ConfigError, GuardedNode, run_node
from cam_guard.ros.transport import QOS_CHOICES, image_qos, latched_qos

# Exit code when recovery gave up (max_reconnect_attempts): the launcher's respawn takes over.
EXIT_CAMERA_FAILED = 3


class CameraNode(GuardedNode):
    def __init__(self) -> None:
        super().__init__("camera")
        device = self.param("device", "auto", "'auto' (first /dev/video*, else synthetic), 'synthetic', a V4L2 "
                            "index, /dev/video*, /dev/v4l/by-id/..., a URL or a video file", dynamic_typing=True)
        fallback = self.param("fallback_devices", [""], "sources recovery may switch to, in order")
        scan = self.param("scan_video_devices", True, "let recovery try other /dev/video* devices")
        settings = CaptureSettings(
            width=self.param("width", 640, "requested frame width", int_range=(16, 7680)),
            height=self.param("height", 480, "requested frame height", int_range=(16, 4320)),
            fps=self.param("fps", 30.0, "requested frame rate", float_range=(1.0, 240.0)),
            fourcc=self.param("fourcc", "MJPG", "requested pixel format (V4L2 devices)"),
            buffer_size=self.param("buffer_size", 1, "driver buffers (V4L2); 1 = newest frame only",
                                   int_range=(1, 16)),
        )
        if len(settings.fourcc) != 4:
            raise ConfigError(f"parameter 'fourcc' = '{settings.fourcc}' must be 4 characters, e.g. MJPG")
        self._encoding = self.param("encoding", "bgr8", "image_raw encoding", choices=("bgr8", "rgb8"))
        self._frame_id = self.param("frame_id", "", "header.frame_id of every message; '' = camera, or "
                                    "<name>_camera in namespace /<name>") or default_frame_id(self.get_namespace())
        qos_name = self.param("qos", "reliable", "QoS of image topics", choices=QOS_CHOICES)
        self._publish_compressed = self.param(
            "publish_compressed", True, "publish image_raw/compressed when the camera sends JPEG")
        calibration_url = self.param("camera_info_url", "", "calibration YAML (file:///path.yaml)")
        stall_timeout = self.param("stall_timeout", 0.5, "seconds without a good frame = stalled",
                                   float_range=(0.05, 30.0))
        watchdog = WatchdogConfig(
            stall_timeout=stall_timeout,
            open_timeout=self.param("open_timeout", 3.0, "seconds an open may take to give a frame",
                                    float_range=(0.1, 60.0)),
            backoff_max=self.param("reconnect_backoff_max", 1.0, "longest pause between attempts",
                                   float_range=(0.1, 60.0)),
            max_attempts=self.param("max_reconnect_attempts", 0,
                                    "failed attempts in a row before exiting non-zero; 0 = forever",
                                    int_range=(0, 1_000_000)),
        )
        warmup = self.param("warmup", -1.0, "seconds of frames withheld after each open while the camera "
                            "settles; -1 = by source: 0.5 for V4L2 cameras, 0 otherwise", float_range=(-1.0, 30.0))
        settings.read_timeout_ms = int(max(stall_timeout, 0.1) * 2000)
        settings.open_timeout_ms = int(watchdog.open_timeout * 1000)
        try:
            candidates = candidate_sources(device, [d for d in fallback if d], scan)
        except SourceError as exc:
            raise ConfigError(str(exc)) from None
        self._calibration = None
        if calibration_url:
            try:
                self._calibration = load_calibration(calibration_url)
            except ValueError as exc:
                raise ConfigError(str(exc)) from None
        if candidates[0].kind == "synthetic" and device == "auto":
            self.get_logger().warning("no camera found: streaming the built-in synthetic source")
        self._expected_fps = settings.fps

        qos = image_qos(qos_name)
        is_up = self.context.ok
        self._raw = TopicPublisher(self.create_publisher(Image, "image_raw", qos), self._image_msg, is_up, self._log)
        self._compressed = TopicPublisher(self.create_publisher(CompressedImage, "image_raw/compressed", qos),
                                          self._compressed_msg, is_up, self._log, then=self._raw.put)
        self._info = TopicPublisher(self.create_publisher(CameraInfo, "camera_info", qos), self._info_msg, is_up,
                                    self._log)
        self._outputs = [self._compressed, self._raw, self._info]
        self._lag = ReaderLag(self._outputs, self._log)
        self._behind: list[str] = []
        self._state_pub = self.create_publisher(String, "camera_state", latched_qos())
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._state_changed = threading.Event()
        self._supervisor = CaptureSupervisor(candidates, settings, watchdog, self._on_frame, self._log,
                                             self._on_state, warmup)
        # Live: a change goes to the camera at once; a value outside what it reported is refused.
        self._controls = LiveParameters(
            self, control_parameters.PARAMETERS,
            lambda values: control_parameters.build(values, self._supervisor.control_ranges()),
            lambda controls, _changed: self._supervisor.set_controls(controls))
        self._supervisor.set_controls(self._controls.config)
        self._supervisor.start()
        self.create_timer(0.05, self._watch_state)
        self.create_timer(1.0, self._publish_diagnostics)
        self.create_timer(1.0, self._check_readers)
        self.get_logger().info(f"camera on {candidates[0]} → {self.resolve_topic_name('image_raw')} "
                               f"({self._encoding}, qos={qos_name})")

    def _log(self, level: str, message: str) -> None:
        # One call site per severity: rclpy refuses a severity change at the same call site.
        logger = self.get_logger()
        if level == "info":
            logger.info(message)
        elif level == "warn":
            logger.warning(message)
        else:
            logger.error(message)

    def _on_frame(self, frame: Frame) -> None:
        # Called from the supervisor thread; each topic's thread converts and publishes its copy.
        # The JPEG goes out before the raw frame (its thread hands the frame on): a raw frame to a
        # reader behind a slow link fills the shared UDP send buffer, and what comes after it on
        # that link is dropped until it drains; far readers of the JPEG must not be that.
        if frame.jpeg is not None and self._publish_compressed:
            self._compressed.put(frame)
        else:
            self._raw.put(frame)
        self._info.put(frame)

    def _image_msg(self, frame: Frame) -> Image | None:
        # Pixels only for someone: with no image_raw subscriber the worker checks JPEGs instead of
        # decoding them, and nothing is converted here (a remote viewer of image_raw/compressed).
        wants_pixels = self._raw.readers() > 0
        self._supervisor.set_decode(wants_pixels)
        if not wants_pixels or frame.image is None:
            return None
        image = cv2.cvtColor(frame.image, cv2.COLOR_BGR2RGB) if self._encoding == "rgb8" else frame.image
        return to_image_msg(image, self._encoding, frame.stamp_ns, self._frame_id)

    def _compressed_msg(self, frame: Frame) -> CompressedImage:
        return to_compressed_msg(frame.jpeg, "jpeg", frame.stamp_ns, self._frame_id)

    def _info_msg(self, frame: Frame) -> CameraInfo:
        info = camera_info_for(frame.width, frame.height, self._calibration)
        info.header.stamp = stamp_from_ns(frame.stamp_ns)
        info.header.frame_id = self._frame_id
        return info

    def _on_state(self, state: CameraState, _reason: str) -> None:
        # Called from the supervisor thread at each transition; rclpy publishers are thread-safe.
        if state is CameraState.STOPPED:
            return  # close() says STOPPED once the supervisor is down
        if self.publish_while_up(lambda: self._state_pub.publish(String(data=state.value))):
            self._state_changed.set()

    def _watch_state(self) -> None:
        if self._state_changed.is_set():  # diagnostics follow a state change at once, not next second
            self._state_changed.clear()
            self._publish_diagnostics()
        if self._supervisor.failed.is_set() or any(p.error for p in self._outputs):
            self.get_logger().error(f"giving up: {self._supervisor.status().reason or 'publisher failed'}")
            self.exit_code = EXIT_CAMERA_FAILED

    def _publish_diagnostics(self) -> None:
        status = self._supervisor.status()
        # camera_info goes out with every frame, pixels wanted or not: it counts the frames published.
        diag = camera_diagnostic(status, f"cam_guard: {self.get_fully_qualified_name()}",
                                 self._expected_fps, self._info.published, self._info.dropped)
        extra = self._lag.diagnostic_values(self._behind)
        for output in self._outputs:
            extra.update(output.diagnostic_values())
        diag.values.extend(KeyValue(key=k, value=v) for k, v in extra.items())
        array = DiagnosticArray(status=[diag])
        array.header.stamp = self.get_clock().now().to_msg()
        self._diag_pub.publish(array)

    def _check_readers(self) -> None:
        self._behind = self._lag.check()

    def close(self) -> None:
        failed = self._supervisor.failed.is_set()
        self._supervisor.stop()
        for output in self._outputs:
            output.close()
        if self.context.ok() and not failed:  # FAILED stays the last word of a camera that gave up
            self._state_pub.publish(String(data=CameraState.STOPPED.value))


def main() -> None:
    raise SystemExit(run_node(CameraNode))


if __name__ == "__main__":
    main()
