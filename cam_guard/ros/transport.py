"""Transport and QoS choices shared by every cam_guard node.

`apply_fastdds_profile()` must run before rclpy.init(): Fast DDS reads its XML profile when the
first participant is created.
"""

import contextlib
import fcntl
import math
import os
import re
import time
from pathlib import Path

from rclpy.duration import Duration
from rclpy.qos import DurabilityPolicy, HistoryPolicy, LivelinessPolicy, QoSProfile, ReliabilityPolicy

from cam_guard.ros.fastdds_setup import (
    BUILTIN_TRANSPORTS_VAR,
    PUBLICATION_MODE_VAR,
    builtin_transports_value,
    check_domain_id,
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
    network sends). With one (FASTDDS_DEFAULT_PROFILES_FILE): a copy of it with non-blocking sends
    added where it does not set them, and
    FASTDDS_BUILTIN_TRANSPORTS=...non_blocking=true when its participant keeps Fast DDS's built-in
    transports (see fastdds_setup). Nothing when another RMW is selected or the user opted
    out with CAM_GUARD_FASTDDS_PROFILE=off. Raises FastDdsSetupError on a setting that cannot work.
    """
    check_domain_id(os.environ.get("ROS_DOMAIN_ID"))
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


# The lock file of each Fast DDS shared-memory object: a data segment (`fastdds_<16 hex>_el`) or a
# port (`fastdds_port<N>_el`, one listener; `_sl`, shared by several). Its owner holds an flock on it.
_LOCK_FILE = re.compile(r"^fastdds_(?:[0-9a-f]{16}|port\d{1,5})_[es]l$")
FASTDDS_CREATION_GRACE_S = 0.2  # a younger lock file may belong to a participant about to lock it (µs after creating)


def _age_s(path: str, now: float) -> float:
    """Seconds since `path` was last modified; infinite when it is gone."""
    try:
        return now - os.stat(path).st_mtime
    except FileNotFoundError:
        return math.inf


def remove_orphaned_fastdds_files(directory: str = "/dev/shm") -> tuple[int, int]:
    """Delete Fast DDS shared-memory segments and ports whose owner process is gone; returns (count,
    bytes). What Fast DDS's `fastdds shm clean` does, before this process's participant exists.

    A participant holds an flock on each object's lock file while it lives and removes the files
    when it exits cleanly; one that was killed leaves them behind. Its data segments are 32 MiB
    each with our profile (a camera respawned for days would fill /dev/shm); its ports are reused by
    the next participant given the same participant id (a respawned node usually is), a dead port
    that another participant may still be sending to. Unlinking does not disturb processes that
    still have a file mapped.
    """
    removed = freed = 0
    now = time.time()
    with contextlib.suppress(FileNotFoundError):
        for name in os.listdir(directory):
            if not _LOCK_FILE.match(name):
                continue
            lock = os.path.join(directory, name)
            obj = name[:-3]
            # A young lock file may be about to be locked; a young object is a stale port Fast DDS is
            # re-creating between releasing and re-taking its lock (writes through a mapping keep mtime).
            try:
                if min(_age_s(lock, now), _age_s(os.path.join(directory, obj), now)) < FASTDDS_CREATION_GRACE_S:
                    continue
                fd = os.open(lock, os.O_RDWR)
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                continue  # held: its owner is alive
            try:
                for path in (os.path.join(directory, obj), lock, os.path.join(directory, f"sem.{obj}_mutex")):
                    with contextlib.suppress(FileNotFoundError):
                        size = os.stat(path).st_blocks * 512
                        os.unlink(path)
                        freed += size
                removed += 1
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
