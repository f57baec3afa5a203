"""camera_node: publishes a camera that is watched, restarted and never silently dead.

Capture happens in a worker process (see capture/supervisor.py); this node publishes the newest
frame it hands over, each topic from a thread of its own (ros/publishing.py), so neither DDS nor
one topic's readers delay the watchdog or another topic. It is a managed (lifecycle) node:
`deactivate` releases the camera (the worker exits), `activate` takes it back; unless `autostart`
is false it configures and activates itself. Parameters change live (ros/camera_parameters.py
says which change needs what).
"""

import threading
from collections.abc import Callable
from functools import partial
from typing import Any

import cv2
from diagnostic_msgs.msg import DiagnosticArray, KeyValue
from rclpy.lifecycle import LifecycleNodeMixin, LifecycleState, TransitionCallbackReturn
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import String

from cam_guard.capture.controls import ControlValue
from cam_guard.capture.supervisor import CaptureSupervisor
from cam_guard.capture.v4l2_device import ControlRange
from cam_guard.capture.watchdog import CameraState
from cam_guard.common.frame_ring import Frame
from cam_guard.common.redact import redact
from cam_guard.ros import camera_parameters, control_parameters
from cam_guard.ros.camera_info import camera_info_for
from cam_guard.ros.camera_parameters import CAPTURE, WATCHDOG, CameraConfig
from cam_guard.ros.cell import default_frame_id
from cam_guard.ros.diagnostics import camera_diagnostic, inactive_camera_diagnostic
from cam_guard.ros.image_conversion import stamp_from_ns, to_compressed_msg
from cam_guard.ros.image_sender import ImageSender
from cam_guard.ros.parameters import LiveParameters
from cam_guard.ros.publishing import ReaderLag, TopicPublisher
from cam_guard.ros.runtime import ConfigError, GuardedNode, run_node
from cam_guard.ros.stopped_readers import stopped_readers
from cam_guard.ros.transport import image_qos, latched_qos

# Exit code when recovery gave up (max_reconnect_attempts): the launcher's respawn takes over.
EXIT_CAMERA_FAILED = 3
SUCCESS = TransitionCallbackReturn.SUCCESS


class CameraNode(LifecycleNodeMixin, GuardedNode):
    def __init__(self) -> None:
        GuardedNode.__init__(self, "camera")
        LifecycleNodeMixin.__init__(self)
        self._supervisor: CaptureSupervisor | None = None  # while active
        self._params = LiveParameters(self, camera_parameters.PARAMETERS, camera_parameters.build, self._apply)
        # Camera controls, live too: a value outside what the camera reported at its last open is refused.
        self._controls = LiveParameters(self, control_parameters.PARAMETERS,
                                        lambda values: control_parameters.build(values, self._control_ranges()),
                                        self._apply_controls)
        config = self._params.config
        if config.candidates[0].kind == "synthetic" and config.device == "auto":
            self.get_logger().warning("no camera found: streaming the built-in synthetic source")
        raw = self.create_publisher(Image, "image_raw", image_qos(config.qos))
        self._raw_sender = ImageSender(raw, self.get_logger().warning)  # a slow send holds up no other thread
        self._raw = TopicPublisher(raw, self._image_msg, self.context.ok, self._log, send=self._raw_sender.send)
        self._info = self._topic(CameraInfo, "camera_info", self._info_msg)
        # image_raw/compressed is advertised once the source sends JPEG (never for raw-only sources).
        self._compressed_lock = threading.Lock()
        self._compressed: TopicPublisher[Frame] | None = None
        self._jpeg_seen = False
        self._lag = ReaderLag(self._outputs, self._log,
                              find_stopped=partial(stopped_readers, self.context.get_domain_id()))
        self._behind: list[str] = []
        self._state_pub = self.create_publisher(String, "camera_state", latched_qos())
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._default_frame_id = default_frame_id(self.get_namespace())  # for frame_id ''
        self._state_changed = threading.Event()
        self.create_timer(0.05, self._watch_state)
        self.create_timer(1.0, self._publish_diagnostics)
        self.create_timer(1.0, self._check_readers)
        if config.autostart and (self.trigger_configure() != SUCCESS or self.trigger_activate() != SUCCESS):
            raise ConfigError("the camera could not be started")
        self.get_logger().info(f"camera on {config.candidates[0]} → {self.resolve_topic_name('image_raw')} "
                               f"({config.encoding}, qos={config.qos})")

    def _topic(self, msg_type: type, name: str, build: Callable[[Frame], Any | None],
               then: Callable[[Frame], None] | None = None) -> TopicPublisher[Frame]:
        publisher = self.create_publisher(msg_type, name, image_qos(self._params.config.qos))
        return TopicPublisher(publisher, build, self.context.ok, self._log, then=then)

    def _outputs(self) -> list[TopicPublisher[Frame]]:
        compressed = self._compressed
        return [self._raw, self._info] if compressed is None else [compressed, self._raw, self._info]

    # -- lifecycle -------------------------------------------------------------------------------
    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        config = self._params.config
        self._supervisor = CaptureSupervisor(config.candidates, config.settings, config.watchdog, self._on_frame,
                                             self._log, self._on_state, config.warmup)
        self._supervisor.set_controls(self._controls.config)
        self._supervisor.start()
        return SUCCESS

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_capture()
        return SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_capture()
        self.exit_code = 0  # finalized: nothing left to do, the process ends
        return SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_capture()
        return SUCCESS

    def _stop_capture(self) -> None:
        supervisor, self._supervisor = self._supervisor, None
        if supervisor is None:
            return
        supervisor.stop()  # the worker exits and lets go of the device
        if self.context.ok() and not supervisor.failed.is_set():  # FAILED stays the last word
            self._state_pub.publish(String(data=CameraState.STOPPED.value))
        self._state_changed.set()

    # -- live parameters -------------------------------------------------------------------------
    def _apply(self, config: CameraConfig, changed: frozenset[str]) -> None:
        """Encoding, frame id and calibration are read per frame; the rest is handed on here."""
        if changed & CAPTURE or not config.publish_compressed:
            self._drop_compressed()  # a new source may send no JPEG
        supervisor = self._supervisor
        if supervisor is None:
            return  # inactive: activate starts with the current configuration
        if changed & WATCHDOG:
            supervisor.set_watchdog(config.watchdog, config.settings)
        if changed & CAPTURE:
            supervisor.reconfigure(config.candidates, config.settings, config.warmup)

    def _control_ranges(self) -> dict[str, ControlRange]:
        supervisor = self._supervisor
        return {} if supervisor is None else supervisor.control_ranges()

    def _apply_controls(self, controls: dict[str, ControlValue], _changed: frozenset[str]) -> None:
        supervisor = self._supervisor
        if supervisor is not None:
            supervisor.set_controls(controls)

    def _drop_compressed(self) -> None:
        with self._compressed_lock:
            compressed, self._compressed, self._jpeg_seen = self._compressed, None, False
        if compressed is not None:
            compressed.close()
            self.destroy_publisher(compressed.publisher)

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

    def _on_frame(self, frame: Frame) -> None:
        # Called from the supervisor thread; each topic's thread converts and publishes its copy.
        # The JPEG goes out before the raw frame (its thread hands the frame on): a raw frame to a
        # reader behind a slow link fills the shared UDP send buffer, and what comes after it on
        # that link is dropped until it drains; far readers of the JPEG must not be that.
        with self._compressed_lock:
            if frame.jpeg is not None and self._params.config.publish_compressed:
                self._jpeg_seen = True
            compressed = self._compressed
        if compressed is not None and frame.jpeg is not None:
            compressed.put(frame)
        else:
            self._raw.put(frame)
        self._info.put(frame)

    def _frame_id(self) -> str:
        return self._params.config.frame_id or self._default_frame_id

    def _image_msg(self, frame: Frame) -> bytearray | Image | None:
        # Pixels only for someone: with no image_raw subscriber the worker checks JPEGs instead of
        # decoding them, and nothing is converted here (a remote viewer of image_raw/compressed).
        wants_pixels = self._raw.readers() > 0
        supervisor = self._supervisor
        if supervisor is not None:
            supervisor.set_decode(wants_pixels)
        if not wants_pixels or frame.image is None:
            return None
        encoding = self._params.config.encoding
        image = cv2.cvtColor(frame.image, cv2.COLOR_BGR2RGB) if encoding == "rgb8" else frame.image
        return self._raw_sender.build(image, encoding, frame.stamp_ns, self._frame_id())

    def _compressed_msg(self, frame: Frame) -> CompressedImage:
        return to_compressed_msg(frame.jpeg, "jpeg", frame.stamp_ns, self._frame_id())

    def _info_msg(self, frame: Frame) -> CameraInfo:
        info = camera_info_for(frame.width, frame.height, self._params.config.calibration)
        info.header.stamp = stamp_from_ns(frame.stamp_ns)
        info.header.frame_id = self._frame_id()
        return info

    def _on_state(self, state: CameraState, _reason: str) -> None:
        # Called from the supervisor thread at each transition; rclpy publishers are thread-safe.
        if state is CameraState.STOPPED:
            return  # _stop_capture says STOPPED once the supervisor is down
        if self.publish_while_up(lambda: self._state_pub.publish(String(data=state.value))):
            self._state_changed.set()

    def _watch_state(self) -> None:
        with self._compressed_lock:
            advertise = self._jpeg_seen and self._compressed is None
        if advertise:  # publishers are made here, in the executor's thread
            compressed = self._topic(CompressedImage, "image_raw/compressed", self._compressed_msg,
                                     then=self._raw.put)
            with self._compressed_lock:
                self._compressed = compressed
        if self._state_changed.is_set():  # diagnostics follow a state change at once, not next second
            self._state_changed.clear()
            self._publish_diagnostics()
        supervisor = self._supervisor
        if supervisor is not None and (supervisor.failed.is_set() or any(p.error for p in self._outputs())):
            self.get_logger().error(f"giving up: {redact(supervisor.status().reason or 'publisher failed')}")
            self.exit_code = EXIT_CAMERA_FAILED

    def _publish_diagnostics(self) -> None:
        name = f"cam_guard: {self.get_fully_qualified_name()}"
        supervisor = self._supervisor
        if supervisor is None:
            diag = inactive_camera_diagnostic(name)
        else:
            # camera_info goes out with every frame, pixels wanted or not: it counts the frames published.
            diag = camera_diagnostic(supervisor.status(), name, self._params.config.settings.fps,
                                     self._info.published, self._info.dropped)
            extra = self._lag.diagnostic_values(self._behind)
            for output in self._outputs():
                extra.update(output.diagnostic_values())
            diag.values.extend(KeyValue(key=k, value=v) for k, v in extra.items())
        # Names this camera's state topic, so that a reader of the state (the LeRobot bridge) finds why.
        diag.values.append(KeyValue(key="state_topic", value=self._state_pub.topic_name))
        array = DiagnosticArray(status=[diag])
        array.header.stamp = self.get_clock().now().to_msg()
        self._diag_pub.publish(array)

    def _check_readers(self) -> None:
        self._behind = self._lag.check()

    def close(self) -> None:
        self._stop_capture()
        for output in self._outputs():
            output.close()


def main() -> None:
    raise SystemExit(run_node(CameraNode))


if __name__ == "__main__":
    main()
