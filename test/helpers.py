"""Shared test helpers. The process and probe harness lives in cam_guard.testing.harness (the benchmarks use it
too)."""

import time

from sensor_msgs.msg import Image

from cam_guard.capture.synthetic import synthetic_frame
from cam_guard.preview.overlay import NO_SIGNAL_BGR, banner_rows
from cam_guard.ros.image_conversion import from_image_msg, to_image_msg
from cam_guard.testing.harness import (
    NodeProcess,
    Recorder,
    RosProbe,
    diagnostic_values,
    latest_camera_status,
    process_alive,
)

__all__ = ["NodeProcess", "Recorder", "RosProbe", "banner_is_no_signal", "diagnostic_values", "frame_msg",
           "latest_camera_status", "process_alive", "publish_until"]


def banner_is_no_signal(msg: Image) -> bool:
    """True when a preview image shows the NO SIGNAL banner colour."""
    image = from_image_msg(msg, "bgr8")
    return tuple(int(v) for v in image[banner_rows(image.shape[0]).start + 1, 2]) == NO_SIGNAL_BGR


def frame_msg(index: int, topic_stamp_ns: int | None = None) -> Image:
    return to_image_msg(synthetic_frame(index, 640, 480), "bgr8", topic_stamp_ns or time.time_ns(), "camera")


def publish_until(pub, make_msg, recorder, count: int, timeout: float = 20) -> None:
    """Publish a fresh message every 50 ms until `recorder` holds `count` messages."""
    deadline = time.monotonic() + timeout
    while len(recorder.items) < count:
        assert time.monotonic() < deadline, f"only {len(recorder.items)} of {count} replies"
        pub.publish(make_msg())
        time.sleep(0.05)
