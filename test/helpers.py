"""Shared test helpers. The process and probe harness lives in cam_guard.testing.harness (the benchmarks use it
too)."""

from sensor_msgs.msg import Image

from cam_guard.preview.overlay import NO_SIGNAL_BGR, banner_rows
from cam_guard.ros.image_conversion import from_image_msg
from cam_guard.testing.harness import (
    NodeProcess,
    Recorder,
    RosProbe,
    diagnostic_values,
    latest_camera_status,
    process_alive,
)

__all__ = ["NodeProcess", "Recorder", "RosProbe", "banner_is_no_signal", "diagnostic_values", "latest_camera_status",
           "process_alive"]


def banner_is_no_signal(msg: Image) -> bool:
    """True when a preview image shows the NO SIGNAL banner colour."""
    image = from_image_msg(msg, "bgr8")
    return tuple(int(v) for v in image[banner_rows(image.shape[0]).start + 1, 2]) == NO_SIGNAL_BGR
