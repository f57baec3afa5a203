"""LeRobot camera `cam_guard`: frames from a cam_guard camera node over ROS 2.

Importing this package (LeRobot imports it and all its submodules) loads no rclpy and starts no
thread: frames arrive through a helper process started with exec and a shared-memory ring.
"""

from lerobot_camera_cam_guard.compat import check_lerobot

check_lerobot()

from lerobot_camera_cam_guard.camera_cam_guard import CamGuardCamera  # noqa: E402
from lerobot_camera_cam_guard.configuration_cam_guard import CamGuardCameraConfig  # noqa: E402
from lerobot_camera_cam_guard.reward import RewardReading, RewardSource  # noqa: E402

__all__ = ["CamGuardCamera", "CamGuardCameraConfig", "RewardReading", "RewardSource"]
