"""camera_node as a managed node, driven through the real lifecycle services (`ros2 lifecycle set`).

"The device is released" is checked from the camera's side: the MJPEG camera sees its connection
closed, and no capture worker process is left.
"""

import time
from pathlib import Path

from helpers import NodeProcess, RemoteLifecycle, process_alive
from sensor_msgs.msg import Image
from std_msgs.msg import String

from cam_guard.ros.transport import latched_qos
from cam_guard.testing.fault_injection import MjpegFaultServer

RELEASE_BOUND_S = 2.0


def wait_until(condition, timeout: float, what: str) -> float:
    """Seconds until `condition()` held (polled: a peer's socket or a process table has no event here)."""
    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < timeout, f"not within {timeout} s: {what}"
        time.sleep(0.02)
    return time.monotonic() - start


def workers_of(pid: int) -> list[int]:
    """Live child processes of `pid` (started by any of its threads)."""
    children = [int(child) for task in Path(f"/proc/{pid}/task").iterdir()
                for child in (task / "children").read_text().split()]
    return [p for p in children if process_alive(p)]


def test_deactivate_releases_the_camera_and_activate_takes_it_back(probe):
    images = probe.subscribe(Image, "/image_raw")
    states = probe.subscribe(String, "/camera_state", latched_qos())
    with MjpegFaultServer(320, 240, 30) as server, \
            NodeProcess("cam_guard.camera_node", {"device": server.url, "width": 320, "height": 240}) as node:
        images.wait_count(5, timeout=30)
        lifecycle = RemoteLifecycle(probe, "/camera")
        assert lifecycle.state() == "active"
        assert server.open_streams == 1 and workers_of(node.pid)

        assert lifecycle.transition("deactivate")
        released_in = wait_until(lambda: server.open_streams == 0 and not workers_of(node.pid), RELEASE_BOUND_S,
                                 "the camera's connection closed and no capture worker left")
        assert lifecycle.state() == "inactive"
        states.wait_for(lambda ms: ms[-1].data == "STOPPED", 5, "STOPPED")
        images.clear()
        time.sleep(0.5)  # nothing may arrive while inactive: wait long enough for 15 frames
        assert not images.messages

        assert lifecycle.transition("activate")
        images.wait_count(5, timeout=10)
        assert server.open_streams == 1 and states.messages[-1].data == "STREAMING"

        assert lifecycle.transition("deactivate") and lifecycle.transition("cleanup")
        assert lifecycle.state() == "unconfigured" and server.open_streams == 0
        assert lifecycle.transition("configure") and lifecycle.transition("activate")
        images.clear()
        images.wait_count(5, timeout=10)

        assert lifecycle.transition("shutdown")
        assert node.wait(timeout=5) == 0
        assert server.open_streams == 0
    assert released_in < RELEASE_BOUND_S


def test_autostart_false_waits_for_the_lifecycle_services(probe):
    images = probe.subscribe(Image, "/image_raw")
    with MjpegFaultServer(320, 240, 30) as server, \
            NodeProcess("cam_guard.camera_node", {"device": server.url, "autostart": False}) as node:
        lifecycle = RemoteLifecycle(probe, "/camera")
        assert lifecycle.state() == "unconfigured"
        assert not server.request_seen.is_set() and not workers_of(node.pid), "the camera was opened"
        assert not lifecycle.transition("activate"), "activate is no transition out of unconfigured"
        assert lifecycle.transition("configure") and lifecycle.transition("activate")
        images.wait_count(5, timeout=30)
        code, _ = node.stop()
    assert code == 0
