"""camera_node: publishes a camera that is watched, restarted and never silently dead.

Capture happens in a worker process (see capture/supervisor.py); this node publishes the newest
frame it hands over. It is a managed (lifecycle) node: `deactivate` releases the camera (the
worker exits), `activate` takes it back; unless `autostart` is false it configures and activates
itself. Parameters change live (ros/camera_parameters.py says which change needs what).
"""

import threading

import cv2
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.lifecycle import LifecycleNodeMixin, LifecycleState, TransitionCallbackReturn
from rclpy.publisher import Publisher
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import String

from cam_guard.capture.controls import ControlValue
from cam_guard.capture.v4l2_device import ControlRange
from cam_guard.capture.watchdog import CameraState
from cam_guard.common.frame_ring import Frame
from cam_guard.common.redact import redact
from cam_guard.ros import camera_parameters, control_parameters
from cam_guard.ros.camera_info import camera_info_for
from cam_guard.ros.camera_parameters import CAPTURE, WATCHDOG, CameraConfig
from cam_guard.ros.camera_stream import CameraStream
from cam_guard.ros.cell import default_frame_id
from cam_guard.ros.diagnostics import camera_diagnostic, inactive_camera_diagnostic
from cam_guard.ros.image_conversion import stamp_from_ns, to_compressed_msg, to_image_msg
from cam_guard.ros.parameters import LiveParameters
from cam_guard.ros.runtime import ConfigError, GuardedNode, run_node
from cam_guard.ros.transport import image_qos, latched_qos

# Exit code when recovery gave up (max_reconnect_attempts): the launcher's respawn takes over.
EXIT_CAMERA_FAILED = 3
SUCCESS = TransitionCallbackReturn.SUCCESS


class CameraNode(LifecycleNodeMixin, GuardedNode):
    def __init__(self) -> None:
        GuardedNode.__init__(self, "camera")
        LifecycleNodeMixin.__init__(self)
        self._stream: CameraStream | None = None  # while active
        self._params = LiveParameters(self, camera_parameters.PARAMETERS, camera_parameters.build, self._apply)
        # Camera controls, live too: a value outside what the camera reported at its last open is refused.
        self._controls = LiveParameters(self, control_parameters.PARAMETERS,
                                        lambda values: control_parameters.build(values, self._control_ranges()),
                                        self._apply_controls)
        config = self._params.config
        if config.candidates[0].kind == "synthetic" and config.device == "auto":
            self.get_logger().warning("no camera found: streaming the built-in synthetic source")
        qos = image_qos(config.qos)
        self._image_pub = self.create_publisher(Image, "image_raw", qos)
        self._info_pub = self.create_publisher(CameraInfo, "camera_info", qos)
        self._state_pub = self.create_publisher(String, "camera_state", latched_qos())
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        # image_raw/compressed is advertised once the source sends JPEG (never for raw-only sources).
        self._compressed_lock = threading.Lock()
        self._compressed_pub: Publisher | None = None
        self._jpeg_seen = False
        self._default_frame_id = default_frame_id(self.get_namespace())  # for frame_id ''
        self._published = 0
        self._state_changed = threading.Event()
        self.create_timer(0.05, self._watch_state)
        self.create_timer(1.0, self._publish_diagnostics)
        if config.autostart and (self.trigger_configure() != SUCCESS or self.trigger_activate() != SUCCESS):
            raise ConfigError("the camera could not be started")
        self.get_logger().info(f"camera on {config.candidates[0]} → {self.resolve_topic_name('image_raw')} "
                               f"({config.encoding}, qos={config.qos})")

    # -- lifecycle -------------------------------------------------------------------------------
    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stream = CameraStream(self._params.config, self._publish_frame, self._log, self._on_state)
        self._stream.supervisor.set_controls(self._controls.config)
        self._stream.start()
        return SUCCESS

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_stream()
        return SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_stream()
        self.exit_code = 0  # finalized: nothing left to do, the process ends
        return SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_stream()
        return SUCCESS

    def _stop_stream(self) -> None:
        stream, self._stream = self._stream, None
        if stream is None:
            return
        stream.stop()
        if self.context.ok() and not stream.supervisor.failed.is_set():  # FAILED stays the last word
            self._state_pub.publish(String(data=CameraState.STOPPED.value))
        self._state_changed.set()

    # -- live parameters -------------------------------------------------------------------------
    def _apply(self, config: CameraConfig, changed: frozenset[str]) -> None:
        """Encoding, frame id and calibration are read per frame; the rest is handed on here."""
        if changed & CAPTURE or not config.publish_compressed:
            self._drop_compressed()  # a new source may send no JPEG
        stream = self._stream
        if stream is None:
            return  # inactive: activate starts with the current configuration
        if changed & WATCHDOG:
            stream.supervisor.set_watchdog(config.watchdog, config.settings)
        if changed & CAPTURE:
            stream.supervisor.reconfigure(config.candidates, config.settings, config.warmup)

    def _control_ranges(self) -> dict[str, ControlRange]:
        return {} if self._stream is None else self._stream.supervisor.control_ranges()

    def _apply_controls(self, controls: dict[str, ControlValue], _changed: frozenset[str]) -> None:
        if self._stream is not None:
            self._stream.supervisor.set_controls(controls)

    def _drop_compressed(self) -> None:
        with self._compressed_lock:
            publisher, self._compressed_pub, self._jpeg_seen = self._compressed_pub, None, False
        if publisher is not None:
            self.destroy_publisher(publisher)

    # -- frames, states, diagnostics -------------------------------------------------------------
    def _log(self, level: str, message: str) -> None:
        # One call site per severity: rclpy refuses a severity change at the same call site.
        logger = self.get_logger()
        message = redact(message)
        if level == "info":
            logger.info(message)
        elif level == "warn":
            logger.warning(message)
        else:
            logger.error(message)

    def _publish_frame(self, frame: Frame) -> bool:
        """Called from the stream's publisher thread; False once Ctrl-C has shut the context down."""
        return self.publish_while_up(lambda: self._publish(frame))

    def _publish(self, frame: Frame) -> None:
        config = self._params.config
        frame_id = config.frame_id or self._default_frame_id
        # Pixels only for someone: with no image_raw subscriber the worker checks JPEGs instead of
        # decoding them, and nothing is converted here (a remote viewer of image_raw/compressed).
        wants_pixels = self._image_pub.get_subscription_count() > 0
        stream = self._stream
        if stream is not None:
            stream.supervisor.set_decode(wants_pixels)
        if wants_pixels and frame.image is not None:
            image = frame.image
            if config.encoding == "rgb8":
                image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
            self._image_pub.publish(to_image_msg(image, config.encoding, frame.stamp_ns, frame_id))
        if frame.jpeg is not None and config.publish_compressed:
            with self._compressed_lock:
                self._jpeg_seen = True
                if self._compressed_pub is not None:
                    self._compressed_pub.publish(to_compressed_msg(frame.jpeg, "jpeg", frame.stamp_ns, frame_id))
        info = camera_info_for(frame.width, frame.height, config.calibration)
        info.header.stamp = stamp_from_ns(frame.stamp_ns)
        info.header.frame_id = frame_id
        self._info_pub.publish(info)
        self._published += 1

    def _on_state(self, state: CameraState, _reason: str) -> None:
        # Called from the supervisor thread at each transition; rclpy publishers are thread-safe.
        if state is CameraState.STOPPED:
            return  # _stop_stream says STOPPED once the supervisor is down
        if self.publish_while_up(lambda: self._state_pub.publish(String(data=state.value))):
            self._state_changed.set()

    def _watch_state(self) -> None:
        with self._compressed_lock:
            advertise = self._jpeg_seen and self._compressed_pub is None
        if advertise:  # publishers are made here, in the executor's thread
            publisher = self.create_publisher(CompressedImage, "image_raw/compressed",
                                              image_qos(self._params.config.qos))
            with self._compressed_lock:
                self._compressed_pub = publisher
        if self._state_changed.is_set():  # diagnostics follow a state change at once, not next second
            self._state_changed.clear()
            self._publish_diagnostics()
        stream = self._stream
        if stream is not None and stream.failed:
            self.get_logger().error(f"giving up: {redact(stream.supervisor.status().reason or 'publisher failed')}")
            self.exit_code = EXIT_CAMERA_FAILED

    def _publish_diagnostics(self) -> None:
        name = f"cam_guard: {self.get_fully_qualified_name()}"
        stream = self._stream
        if stream is None:
            diag = inactive_camera_diagnostic(name)
        else:
            diag = camera_diagnostic(stream.supervisor.status(), name, self._params.config.settings.fps,
                                     self._published, stream.dropped)
        array = DiagnosticArray(status=[diag])
        array.header.stamp = self.get_clock().now().to_msg()
        self._diag_pub.publish(array)

    def close(self) -> None:
        self._stop_stream()


def main() -> None:
    raise SystemExit(run_node(CameraNode))


if __name__ == "__main__":
    main()
