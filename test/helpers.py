"""Shared test helpers. The process and probe harness lives in cam_guard.testing.harness (the benchmarks use it
too)."""

import json
import os
import signal
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sensor_msgs.msg import Image

from cam_guard.capture.synthetic import synthetic_frame
from cam_guard.preview.overlay import NO_SIGNAL_BGR, banner_rows
from cam_guard.ros.image_conversion import from_image_msg, to_image_msg
from cam_guard.testing.harness import (
    CameraUnderTest,
    NodeProcess,
    Recorder,
    RemoteLifecycle,
    RemoteParameters,
    RosProbe,
    diagnostic_values,
    free_port,
    latest_camera_status,
    process_alive,
    start_camera,
)
from cam_guard.testing.uvc.camera import EmulatedUvcCamera

__all__ = ["UVC_FAULTS", "UVC_STALL_TIMEOUT_S", "NodeProcess", "Recorder", "RemoteLifecycle", "RemoteParameters",
           "RosProbe", "assert_config_error", "banner_is_no_signal", "children", "diagnostic_values", "error_lines",
           "frame_msg", "free_port", "latest_camera_status", "needs_uvc_emulator", "node_pid", "process_alive",
           "publish_until", "publish_until_seen", "start_uvc_camera", "web_state"]

# As root (CI) it runs: setup_env.sh installs gcc there, and a missing tool is an error, never a silent skip.
needs_uvc_emulator = pytest.mark.skipif(
    os.geteuid() != 0, reason="the emulated camera needs root (a private mount namespace for its /dev)")
UVC_STALL_TIMEOUT_S = 0.5
# The emulated camera's faults as (inject, restore); None: the node recovers without the camera's help.
UVC_FAULTS: dict[str, tuple[Callable[[EmulatedUvcCamera], object], Callable[[EmulatedUvcCamera], object] | None]] = {
    "no frames": (lambda cam: cam.stall(), lambda cam: cam.resume()),
    "DQBUF blocked in the driver": (lambda cam: cam.hang_dqbuf(), None),
    "unplug, back on the same node": (lambda cam: cam.unplug(), lambda cam: cam.replug(0)),
    "unplug, back as another node": (lambda cam: cam.unplug(), lambda cam: cam.replug(4)),
}


def start_uvc_camera(probe: RosProbe, cam: EmulatedUvcCamera, **params: Any) -> CameraUnderTest:
    """camera_node on the emulated camera's by-id link, inside its namespace, once it streams (no warm-up:
    the emulator's frames need no settling)."""
    params = {"stall_timeout": UVC_STALL_TIMEOUT_S, "warmup": 0.0, **params}
    return start_camera(probe, cam.by_id_path, popen=cam.popen, **params)


def frame_msg(index: int, topic_stamp_ns: int | None = None) -> Image:
    return to_image_msg(synthetic_frame(index, 640, 480), "bgr8", topic_stamp_ns or time.time_ns(), "camera")


def publish_until_seen(pub: Any, make_msg: Callable[[], Any], recorder: Recorder,
                       predicate: Callable[[list[Any]], bool], timeout: float, what: str) -> float:
    """Publish a fresh message every 50 ms until `predicate` holds for what `recorder` got;
    returns the seconds it took."""
    start = time.monotonic()
    while not predicate(recorder.messages):
        assert time.monotonic() - start < timeout, f"not within {timeout} s: {what}"
        pub.publish(make_msg())
        time.sleep(0.05)
    return time.monotonic() - start


def publish_until(pub: Any, make_msg: Callable[[], Any], recorder: Recorder, count: int, timeout: float = 20) -> None:
    """Publish a fresh message every 50 ms until `recorder` holds `count` messages."""
    publish_until_seen(pub, make_msg, recorder, lambda ms: len(ms) >= count, timeout, f"{count} replies")


def error_lines(output: str) -> list[str]:
    """The lines a process reported as errors: ROS log lines at ERROR, or `[executable] error: ...`
    from before rclpy was up."""
    return [line for line in output.splitlines() if line.startswith("[ERROR]") or "] error: " in line]


def assert_config_error(node: NodeProcess, message: str, timeout: float = 120) -> str:
    """`node` exits 2 with exactly one error line, containing `message`, and no traceback; returns that line."""
    # The bound only guards against a hang: importing torch and lerobot alone took over 30 s under load.
    code = node.wait(timeout=timeout)
    output = node.output()
    assert code == 2, output
    assert "Traceback" not in output
    errors = error_lines(output)
    assert len(errors) == 1 and message in errors[0], output
    return errors[0]


def banner_is_no_signal(msg: Image) -> bool:
    """True when a preview image shows the NO SIGNAL banner colour."""
    image = from_image_msg(msg, "bgr8")
    return tuple(int(v) for v in image[banner_rows(image.shape[0]).start + 1, 2]) == NO_SIGNAL_BGR


def children(pid: int) -> dict[int, str]:
    """Live child processes of `pid`: pid -> command line."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found[int(entry.name)] = cmdline
    return found


def node_pid(graph_pid: int, module: str, timeout: float = 20, other_than: int | None = None) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pid, cmd in children(graph_pid).items():
            if module in cmd and pid != other_than:
                return pid
        time.sleep(0.05)
    raise AssertionError(f"{module} is not running under pid {graph_pid}")


def web_state(port: int) -> dict | None:
    """preview_node's /state.json on 127.0.0.1:`port`, or None while nothing answers there."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/state.json", timeout=5) as response:
            return json.loads(response.read())
    except OSError:
        return None


def stop_child(pid: int) -> None:
    """SIGSTOP a child of this process, returning once it is stopped."""
    os.kill(pid, signal.SIGSTOP)
    _, status = os.waitpid(pid, os.WUNTRACED)
    assert os.WIFSTOPPED(status)
