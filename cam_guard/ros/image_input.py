"""Camera images in, raw or compressed: the one place where consumers subscribe and decode (issue 16).

`transport` — a parameter of reward_node and preview_node, `--transport` of the LeRobot bridge
helper, `transport` in the LeRobot camera config — chooses what crosses the network, with
image_transport's naming: `raw` reads `<topic>` (sensor_msgs/Image: 2.7 MB per 1280x720 frame),
`compressed` reads `<topic>/compressed` (sensor_msgs/CompressedImage: the camera's own JPEG,
~60 KB), decoded at the consumer. Messages are kept as they arrive and decoded by `to_array` where
the consumer wants pixels (its worker thread), so a DDS callback never waits on a decoder.

`ArrivalWatch` says when a camera is gone by the time since its last frame *arrived* here (not by
the capture stamp, which comes from another machine's clock): it notices a camera that was killed,
a cable pulled or a network link that went down, which the camera's own latched state cannot say.
"""

import time
from collections import deque
from collections.abc import Callable

import numpy as np
from rclpy.node import Node
from rclpy.subscription import Subscription
from sensor_msgs.msg import CompressedImage, Image

from cam_guard.ros.image_conversion import from_compressed_msg, from_image_msg
from cam_guard.ros.transport import newest_only_subscription_qos

TRANSPORTS = ("raw", "compressed")
TRANSPORT_HELP = "raw: sensor_msgs/Image on the topic; compressed: the camera's JPEG on <topic>/compressed"
ImageMessage = Image | CompressedImage


def input_topic(topic: str, transport: str) -> str:
    """The topic a consumer of `topic` reads with `transport` (image_transport's naming)."""
    if transport not in TRANSPORTS:
        raise ValueError(f"transport must be one of {', '.join(TRANSPORTS)}, got '{transport}'")
    return f"{topic.rstrip('/')}/compressed" if transport == "compressed" else topic


def subscribe_images(node: Node, topic: str, transport: str,
                     callback: Callable[[ImageMessage], None]) -> Subscription:
    """Best effort, depth 1 (matches any publisher, never queues old frames) on the transport's topic."""
    msg_type = CompressedImage if transport == "compressed" else Image
    return node.create_subscription(msg_type, input_topic(topic, transport), callback,
                                     newest_only_subscription_qos())


def to_array(msg: ImageMessage, encoding: str, min_size: tuple[int, int] | None = None) -> np.ndarray:
    """The pixels in `encoding` ('bgr8' or 'rgb8'); raises ImageConversionError on a bad message.

    `min_size` (height, width): what the consumer needs at least; a JPEG is then decoded at the smallest
    scale that gives it (a raw frame comes as it is)."""
    if isinstance(msg, CompressedImage):
        return from_compressed_msg(msg, encoding, min_size)
    return from_image_msg(msg, encoding)


def describe(msg: ImageMessage) -> str:
    """'640x480 bgr8' or 'jpeg, 61 KB': for messages about a frame."""
    if isinstance(msg, CompressedImage):
        return f"{msg.format or 'compressed'}, {len(msg.data) / 1024:.0f} KB"
    return f"{msg.width}x{msg.height} {msg.encoding}"


class ArrivalWatch:
    """Time since the last frame arrived, and whether that means the camera is gone.

    Gone = nothing for `min_gap_s` and for `periods` typical frame intervals (so a 2 fps camera is
    not declared gone between two frames).
    """

    def __init__(self, min_gap_s: float = 0.5, periods: float = 5.0) -> None:
        self._min_gap_s = min_gap_s
        self._periods = periods
        self._arrivals: deque[float] = deque(maxlen=16)

    def arrived(self, now: float | None = None) -> None:
        self._arrivals.append(time.monotonic() if now is None else now)

    def age_s(self, now: float | None = None) -> float | None:
        if not self._arrivals:
            return None
        return (time.monotonic() if now is None else now) - self._arrivals[-1]

    def limit_s(self) -> float:
        gaps = np.diff(np.asarray(self._arrivals))
        return max(self._min_gap_s, self._periods * float(np.median(gaps))) if len(gaps) else self._min_gap_s

    def gone(self, now: float | None = None) -> bool:
        """True once frames flowed and then stopped for longer than `limit_s()`."""
        age = self.age_s(now)
        return age is not None and age > self.limit_s()
