"""What camera_node says while a camera cannot be opened: once, not every attempt."""

import socket
import time

from diagnostic_msgs.msg import DiagnosticArray
from helpers import NodeProcess, diagnostic_values, latest_camera_status
from std_msgs.msg import String

from cam_guard.ros.transport import latched_qos


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens there once the socket is closed


def test_a_camera_that_cannot_be_opened_is_reported_once_not_every_attempt(probe):
    states = probe.subscribe(String, "/camera_state", latched_qos())
    diags = probe.subscribe(DiagnosticArray, "/diagnostics")
    url = f"http://127.0.0.1:{closed_port()}/x.mjpg"
    with NodeProcess("cam_guard.camera_node", {"device": url, "open_timeout": 0.5,
                                               "reconnect_backoff_max": 0.2}) as node:
        states.wait_for(lambda ms: any(m.data == "RECONNECTING" for m in ms), 30, "failed attempts")
        start = time.monotonic()
        while "could not open" not in node.output() and time.monotonic() < start + 30:
            time.sleep(0.1)
        time.sleep(4.0)  # ~10 more attempts at 0.2-0.5 s each
        attempts = int(diagnostic_values(latest_camera_status(diags))["reconnect_attempts"])
        code, _ = node.stop()
        output = node.output()
    refused = [line for line in output.splitlines() if line.startswith("[WARN]") and "could not open" in line]
    assert code == 0
    assert attempts >= 5, "the camera was retried"
    assert len(refused) == 1, "\n".join(refused)
