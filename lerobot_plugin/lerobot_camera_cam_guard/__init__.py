"""LeRobot camera `cam_guard`: frames from a cam_guard camera node over ROS 2.

Importing this package (LeRobot imports it and all its submodules) loads no rclpy and starts no
thread: frames arrive through a helper process started with exec and a shared-memory ring.
"""

from lerobot_camera_cam_guard.camera_cam_guard import CamGuardCamera
from lerobot_camera_cam_guard.configuration_cam_guard import CamGuardCameraConfig
from lerobot_camera_cam_guard.reward import RewardReading, RewardSource

__all__ = ["CamGuardCamera", "CamGuardCameraConfig", "RewardReading", "RewardSource"]
