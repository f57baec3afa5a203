"""Test session setup: ROS 2 on loopback only, a domain of its own for each test, rclpy for probe nodes."""

import fcntl
import itertools
import os
import sys
from collections.abc import Iterator

# Before rclpy is imported anywhere: DDS stays on 127.0.0.1. Every node process a test starts
# inherits the test's domain (below).
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.setdefault("AMENT_PREFIX_PATH", sys.prefix)
os.environ.setdefault("PYTHONUNBUFFERED", "1")

import pytest

from cam_guard.ros.transport import apply_fastdds_profile, remove_orphaned_fastdds_files

apply_fastdds_profile()  # the shipped Fast DDS profile, for this process's participants (set in the environment)

_DOMAINS = 100  # ROS domains 1..100
_next_domain = itertools.count(os.getpid())


def _claim_domain() -> tuple[int, int]:
    """The next ROS domain that no other test session on this machine holds (an flock'ed file each),
    and the descriptor that holds it."""
    for _ in range(_DOMAINS):
        domain = 1 + next(_next_domain) % _DOMAINS
        fd = os.open(f"/tmp/cam_guard-test-domain-{domain}.lock", os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        return domain, fd
    raise RuntimeError("every ROS domain 1..100 is held by another test session")


@pytest.fixture(autouse=True)
def ros_domain() -> Iterator[int]:
    """Each test in a domain of its own: a participant a previous test killed leaves its shared-memory
    port behind, and one still sending to it can miss the next node for a while (README, "No reader
    can slow the camera")."""
    domain, fd = _claim_domain()
    os.environ["ROS_DOMAIN_ID"] = str(domain)
    try:
        yield domain
    finally:
        os.close(fd)


@pytest.fixture
def ros(ros_domain: int) -> Iterator[None]:
    """rclpy for this test, in its domain."""
    import rclpy

    remove_orphaned_fastdds_files()  # as every node does: a dead participant's port can hide this one
    rclpy.init()
    try:
        yield
    finally:
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
