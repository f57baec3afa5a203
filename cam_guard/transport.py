"""Transport and QoS choices shared by every cam_guard node.

`apply_shm_profile()` must run before rclpy.init(): Fast DDS reads its XML profile when the
first participant is created.
"""

import os
from pathlib import Path

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

PROFILE_PATH = Path(__file__).with_name("fastdds_shm_profile.xml")
_PROFILE_VARS = ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE")
# Distributions whose Fast DDS (2.x) only reads the FASTRTPS_ name; 3.x (Kilted on) warns on it.
_FASTDDS_2_DISTROS = ("humble", "iron", "jazzy")
OPT_OUT_VAR = "CAM_GUARD_FASTDDS_PROFILE"

QOS_CHOICES = ("reliable", "sensor_data", "system_default")


def apply_shm_profile() -> str | None:
    """Use the shipped large-shared-memory profile unless the user brought their own.

    Returns the profile path in effect for Fast DDS (None when another RMW is selected or
    the user opted out with CAM_GUARD_FASTDDS_PROFILE=off).
    """
    if os.environ.get(OPT_OUT_VAR, "").lower() in ("off", "0", "false"):
        return None
    rmw = os.environ.get("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
    if not rmw.startswith("rmw_fastrtps"):
        return None
    for var in _PROFILE_VARS:
        if os.environ.get(var):
            return os.environ[var]
    legacy = os.environ.get("ROS_DISTRO", "") in _FASTDDS_2_DISTROS
    os.environ[_PROFILE_VARS[1] if legacy else _PROFILE_VARS[0]] = str(PROFILE_PATH)
    return str(PROFILE_PATH)


def image_qos(name: str) -> QoSProfile:
    """QoS for publishing images.

    'reliable' (the default) offers reliable delivery with depth 1: best-effort subscribers
    (rqt_image_view, `ros2 topic hz`) and reliable ones (`ros2 topic echo`, rqt_topic) both match,
    and keep-last 1 means a slow subscriber gets the newest frame, never a backlog.
    """
    if name == "reliable":
        return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                          reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE)
    if name == "sensor_data":
        return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                          reliability=ReliabilityPolicy.BEST_EFFORT, durability=DurabilityPolicy.VOLATILE)
    if name == "system_default":
        return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10)
    raise ValueError(f"qos must be one of {', '.join(QOS_CHOICES)}, got '{name}'")


def newest_only_subscription_qos() -> QoSProfile:
    """What our own image subscribers use: best effort, depth 1, so they match any publisher
    and never hold a queue of old frames."""
    return image_qos("sensor_data")


def latched_qos() -> QoSProfile:
    """For small state topics a late joiner must see at once (camera state)."""
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                      reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
