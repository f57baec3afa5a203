"""Test session setup: ROS 2 on loopback only, a domain of our own, rclpy for probe nodes."""

import os
import sys

# Before rclpy is imported anywhere: DDS stays on 127.0.0.1 and this session gets its own domain,
# inherited by every node process the tests start.
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.setdefault("ROS_DOMAIN_ID", str(1 + os.getpid() % 100))
os.environ.setdefault("AMENT_PREFIX_PATH", sys.prefix)
os.environ.setdefault("PYTHONUNBUFFERED", "1")

import pytest

from cam_guard.ros.transport import apply_fastdds_profile, remove_orphaned_fastdds_files


@pytest.fixture(scope="session")
def ros():
    """rclpy initialised once for the session (with the shipped Fast DDS profile)."""
    import rclpy

    apply_fastdds_profile()
    remove_orphaned_fastdds_files()  # as every node does: a dead participant's port can hide this one
    rclpy.init()
    yield
    rclpy.try_shutdown()


@pytest.fixture
def probe(ros):
    from helpers import RosProbe

    with RosProbe() as p:
        yield p


@pytest.fixture
def uvc():
    """An emulated USB camera plugged into a private /dev of its own (root: a mount namespace)."""
    from cam_guard.testing.uvc.camera import EmulatedUvcCamera
    from cam_guard.testing.uvc.namespace import DevNamespace

    with DevNamespace() as ns, EmulatedUvcCamera(ns) as cam:
        yield cam  # the namespace's close() SIGKILLs whatever a failed test left running inside


@pytest.fixture(scope="session")
def lerobot_checkpoint(tmp_path_factory):
    """A real LeRobot reward-classifier checkpoint, built offline (cam_guard.testing.lerobot_checkpoint)."""
    from cam_guard.testing.lerobot_checkpoint import reward_classifier_checkpoint

    return reward_classifier_checkpoint(tmp_path_factory.mktemp("lerobot"))
