"""The ROS side of the LeRobot bridge: a small rclpy process feeding a shared-memory ring.

LeRobot's process must not run DDS threads (it may fork; it imports every plugin submodule), so
`lerobot_camera_cam_guard` starts this helper with exec and reads what it writes:

    python -m cam_guard.bridge.helper --ring PATH --doorbell-fd N [--image-topic T] [--color rgb|bgr]
                                      [--transport raw|compressed] [--state-topic T] [--reward-topic T]
    python -m cam_guard.bridge.helper --list      # JSON list of live sensor_msgs/Image topics

Each frame goes into the ring (converted to the colour order asked for) and one byte is written
to the doorbell pipe, without blocking (a full pipe only means the reader is behind; the ring
always holds the newest frame). Camera state and the latest reward go into the ring's header.

The camera's state is followed through every transition, and what ended the last streaming spell
(STALLED, STOPPED, NO_PUBLISHER) is kept until frames flow again. A camera node that is killed
cannot say so: its state topic's liveliness lapses within a second (the QoS lease), and then the
state is NO_PUBLISHER; a node that publishes no state at all is noticed when its image topic has
no publisher left (DDS discovery, up to 20 s). Frames that stop arriving while the camera still
says STREAMING (its link lost, its frames dropped on the way) read NO_FRAMES (ros.image_input.ArrivalWatch).
"""

import argparse
import contextlib
import json
import os
import sys
import time

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import Vector3Stamped
from rclpy.event_handler import QoSLivelinessChangedInfo, SubscriptionEventCallbacks
from rclpy.node import Node
from std_msgs.msg import String

from cam_guard.common.child_process import die_with_parent
from cam_guard.common.frame_ring import FrameRing, RewardSample, Status
from cam_guard.ros.fastdds_setup import FastDdsSetupError
from cam_guard.ros.image_conversion import ImageConversionError, stamp_to_ns
from cam_guard.ros.image_input import (
    TRANSPORTS,
    ArrivalWatch,
    ImageMessage,
    describe,
    input_topic,
    subscribe_images,
    to_array,
)
from cam_guard.ros.runtime import prepare_ros_process, spin_until_shutdown
from cam_guard.ros.transport import latched_qos

LIST_DISCOVERY_S = 1.5
STREAMING = "STREAMING"
NO_PUBLISHER = "NO_PUBLISHER"
NO_FRAMES = "NO_FRAMES"
STATE_HISTORY = 10  # transitions kept per read: STALLED is followed by RECONNECTING within milliseconds


def follow_state(status: Status, state: str, now_ns: int) -> Status:
    """The status after the camera reports `state` (or is found gone, NO_PUBLISHER) at `now_ns`."""
    if state == STREAMING:
        return status._replace(state=state, fault="", fault_ns=0)
    if status.state != STREAMING:
        return status._replace(state=state)
    # The watchdog leaves STREAMING only through STALLED; the camera's keep-last-1 state topic may
    # have replaced that message by the RECONNECTING that follows it before it reached us.
    return status._replace(state=state, fault="STALLED" if state == "RECONNECTING" else state, fault_ns=now_ns)


def camera_reason(diagnostics: DiagnosticArray, state_topic: str) -> tuple[str, str] | None:
    """(state, reason) from the camera whose `camera_state` topic is `state_topic`, if it is in `diagnostics`.

    The state topic carries the state only; why (e.g. "gone: /dev/video0 does not exist (unplugged?)")
    is in the camera's diagnostics, which name their state topic for this."""
    for status in diagnostics.status:
        values = {kv.key: kv.value for kv in status.values}
        if values.get("state_topic") == state_topic:
            return values.get("state", ""), values.get("reason", "")
    return None


def with_reason(status: Status, diagnosed: tuple[str, str]) -> Status:
    """`status` with the camera's diagnosed (state, reason): a reason goes with the state it was
    given for, never with a later one (a killed camera's last reason is not why it is gone)."""
    state, reason = diagnosed
    return status._replace(reason=reason if status.state == state and state != STREAMING else "")


class BridgeHelper(Node):
    def __init__(self, ring: FrameRing, doorbell_fd: int, args: argparse.Namespace) -> None:
        super().__init__(f"lerobot_bridge_{os.getpid()}")
        self._ring = ring
        self._doorbell = doorbell_fd
        self._encoding = "rgb8" if args.color == "rgb" else "bgr8"
        self._reported = "UNKNOWN"  # what the camera said last, whether or not it is still there
        self._status = Status(self._reported, "")
        ring.set_status(self._status)
        self._image_topic = input_topic(args.image_topic, args.transport) if args.image_topic else ""
        self._arrivals = ArrivalWatch()
        self._frames_gone = False
        if args.image_topic:
            subscribe_images(self, args.image_topic, args.transport, self._on_image)
            self._had_publisher = False
            self.create_timer(0.1, self._check_publisher)
        self._diagnosed = ("", "")  # (state, reason) from the camera's last diagnostics
        if args.state_topic:
            qos = latched_qos()
            qos.depth = STATE_HISTORY
            self.create_subscription(String, args.state_topic, self._on_state, qos,
                                     event_callbacks=SubscriptionEventCallbacks(liveliness=self._on_liveliness))
            self._state_topic = self.resolve_topic_name(args.state_topic)
            self.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 10)
        if args.reward_topic:
            self.create_subscription(Vector3Stamped, args.reward_topic, self._on_reward, 10)

    def _on_image(self, msg: ImageMessage) -> None:
        self._arrivals.arrived()
        if self._frames_gone:
            self._frames_gone = False
            self._set_status(follow_state(self._status, self._reported, time.time_ns()))
        try:
            image = to_array(msg, self._encoding)
            self._ring.write(image, None, stamp_to_ns(msg.header.stamp))
        except (ImageConversionError, ValueError) as exc:
            self._set_status(self._status._replace(error=f"{describe(msg)} frame rejected: {exc}"))
            return
        if self._status.error:
            self._set_status(self._status._replace(error=""))
        self._ring_doorbell()

    def _check_publisher(self) -> None:
        present = self.count_publishers(self._image_topic) > 0
        if present != self._had_publisher:
            self._had_publisher = present
            self._set_presence(present)
        if self._arrivals.gone() and not self._frames_gone and self._status.state == STREAMING:
            self._frames_gone = True
            self._set_status(follow_state(self._status, NO_FRAMES, time.time_ns()))

    def _on_liveliness(self, info: QoSLivelinessChangedInfo) -> None:
        self._set_presence(info.alive_count > 0)

    def _set_presence(self, present: bool) -> None:
        self._set_status(follow_state(self._status, self._reported if present else NO_PUBLISHER, time.time_ns()))

    def _on_state(self, msg: String) -> None:
        self._reported = msg.data
        self._set_status(follow_state(self._status, msg.data, time.time_ns()))

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        diagnosed = camera_reason(msg, self._state_topic)
        if diagnosed is not None and diagnosed != self._diagnosed:
            self._diagnosed = diagnosed
            self._set_status(self._status)

    def _set_status(self, status: Status) -> None:
        status = with_reason(status, self._diagnosed)
        self._status = status
        self._ring.set_status(status)
        self._ring_doorbell()

    def _on_reward(self, msg: Vector3Stamped) -> None:
        self._ring.set_reward(RewardSample(msg.vector.x, msg.vector.y, msg.vector.z >= 0.5,
                                           stamp_to_ns(msg.header.stamp)))
        self._ring_doorbell()

    def _ring_doorbell(self) -> None:
        with contextlib.suppress(BlockingIOError):  # full: the reader is behind, the ring has the newest
            os.write(self._doorbell, b".")


def list_image_topics() -> list[dict[str, str]]:
    rclpy.init()
    node = rclpy.create_node(f"cam_guard_list_{os.getpid()}")
    try:
        deadline = time.monotonic() + LIST_DISCOVERY_S
        while time.monotonic() < deadline:
            rclpy.spin_once(node, timeout_sec=0.1)
        return [{"topic": name, "type": types[0]} for name, types in node.get_topic_names_and_types()
                if "sensor_msgs/msg/Image" in types]
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cam_guard.bridge.helper")
    parser.add_argument("--list", action="store_true")
    parser.add_argument("--ring")
    parser.add_argument("--doorbell-fd", type=int)
    parser.add_argument("--image-topic", default="")
    parser.add_argument("--color", choices=("rgb", "bgr"), default="rgb")
    parser.add_argument("--transport", choices=TRANSPORTS, default="raw")
    parser.add_argument("--state-topic", default="")
    parser.add_argument("--reward-topic", default="")
    args = parser.parse_args(argv)
    die_with_parent()
    try:
        prepare_ros_process()
    except FastDdsSetupError as exc:
        print(f"cam_guard.bridge.helper: error: {exc}", file=sys.stderr)
        return 2
    if args.list:
        print(json.dumps(list_image_topics()), flush=True)
        return 0
    if not args.ring or args.doorbell_fd is None:
        parser.error("--ring and --doorbell-fd are required")
    os.set_blocking(args.doorbell_fd, False)
    ring = FrameRing.attach(args.ring, writable=True)
    rclpy.init()
    node = BridgeHelper(ring, args.doorbell_fd, args)
    try:
        spin_until_shutdown(node)
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
        ring.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
