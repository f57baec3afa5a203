"""Transport and QoS choices shared by every cam_guard node.

`apply_fastdds_profile()` must run before rclpy.init(): Fast DDS reads its XML profile when the
first participant is created.
"""

import contextlib
import fcntl
import os
import re
from pathlib import Path

from rclpy.duration import Duration
from rclpy.qos import DurabilityPolicy, HistoryPolicy, LivelinessPolicy, QoSProfile, ReliabilityPolicy

from cam_guard.ros.fastdds_setup import (
    BUILTIN_TRANSPORTS_VAR,
    PUBLICATION_MODE_VAR,
    builtin_transports_value,
    check_publication_mode,
    non_blocking_copy,
)

PROFILE_PATH = Path(__file__).with_name("fastdds_shm_profile.xml")
_PROFILE_VARS = ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE")
# Distributions whose Fast DDS (2.x) only reads the FASTRTPS_ name; 3.x (Kilted on) warns on it.
_FASTDDS_2_DISTROS = ("humble", "iron", "jazzy")
OPT_OUT_VAR = "CAM_GUARD_FASTDDS_PROFILE"

QOS_CHOICES = ("reliable", "sensor_data", "system_default")


def apply_fastdds_profile() -> list[str]:
    """Choose the Fast DDS set-up of this process; returns what was done, for the log.

    Without a profile of the user's: the shipped one (large shared-memory segment, non-blocking
    network sends, a patient health check of our shared-memory ports). With one
    (FASTDDS_DEFAULT_PROFILES_FILE): a copy of it with those added where it does not set them, and
    FASTDDS_BUILTIN_TRANSPORTS=...non_blocking=true when its participant keeps Fast DDS's built-in
    transports (see fastdds_setup). Nothing when another RMW is selected or the user opted
    out with CAM_GUARD_FASTDDS_PROFILE=off. Raises FastDdsSetupError on a setting that cannot work.
    """
    if os.environ.get(OPT_OUT_VAR, "").lower() in ("off", "0", "false"):
        return []
    rmw = os.environ.get("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
    if not rmw.startswith("rmw_fastrtps"):
        return []
    check_publication_mode(os.environ.get(PUBLICATION_MODE_VAR))
    user_var = next((var for var in _PROFILE_VARS if os.environ.get(var)), None)
    if user_var is None:
        legacy = os.environ.get("ROS_DISTRO", "") in _FASTDDS_2_DISTROS
        os.environ[_PROFILE_VARS[1] if legacy else _PROFILE_VARS[0]] = str(PROFILE_PATH)
        return []
    user_profile = os.environ[user_var]
    if user_profile == str(PROFILE_PATH) or Path(user_profile).name.startswith("cam_guard-fastdds-"):
        return []  # ours, or our copy: a cam_guard process started this one
    copy, edit = non_blocking_copy(user_profile)
    os.environ[user_var] = str(copy)
    notes = [f"Fast DDS profile {user_profile}: added {'; '.join(edit.changed) or 'nothing'} in {copy}"]
    if edit.kept_blocking:
        notes.append(f"Fast DDS profile {user_profile} sets non_blocking_send=false for "
                     f"{', '.join(edit.kept_blocking)}: a slow network reader can stall this node")
    builtin = builtin_transports_value(os.environ.get(BUILTIN_TRANSPORTS_VAR))
    if edit.uses_builtin_transports and builtin is not None:
        os.environ[BUILTIN_TRANSPORTS_VAR] = builtin
        notes.append(f"{BUILTIN_TRANSPORTS_VAR}={builtin}")
    return notes


_SEGMENT = re.compile(r"^fastdds_[0-9a-f]{16}$")  # data segments; fastdds_port* are Fast DDS's to manage


def remove_orphaned_fastdds_segments(directory: str = "/dev/shm") -> tuple[int, int]:
    """Delete Fast DDS shared-memory segments whose owner process is gone; returns (count, bytes).

    A participant holds an flock on `<segment>_el` while it lives and removes both files when it
    exits cleanly; one that was killed leaves them behind (32 MiB each with our profile), and a
    camera respawned for days would fill /dev/shm. Unlinking does not disturb processes that still
    have a segment mapped. This is what Fast DDS's `fastdds shm clean` does.
    """
    removed = freed = 0
    with contextlib.suppress(FileNotFoundError):
        names = os.listdir(directory)
        for name in names:
            if not _SEGMENT.match(name) or f"{name}_el" not in names:
                continue
            segment, lock = os.path.join(directory, name), os.path.join(directory, f"{name}_el")
            try:
                fd = os.open(lock, os.O_RDWR)
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                continue  # held: its owner is alive
            try:
                size = os.stat(segment).st_blocks * 512
                os.unlink(segment)
                os.unlink(lock)
                removed, freed = removed + 1, freed + size
            except OSError:
                pass
            finally:
                os.close(fd)
    return removed, freed


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


STATE_LIVELINESS_S = 1.0


def latched_qos() -> QoSProfile:
    """For small state topics a late joiner must see at once (camera state). The liveliness lease
    lets a subscriber learn within STATE_LIVELINESS_S that the publisher was killed (DDS discovery
    alone takes 20 s); subscribers that ask for no lease match as before."""
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                      reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL,
                      liveliness=LivelinessPolicy.AUTOMATIC,
                      liveliness_lease_duration=Duration(seconds=STATE_LIVELINESS_S))
