"""A camera password never leaves the capture worker: not in the log, /rosout, /diagnostics, the
state topic or an error message, even while the camera stalls and reconnects and OpenCV is asked
to log every open; with `credentials` it is not in any parameter either."""

import time

import pytest
from diagnostic_msgs.msg import DiagnosticArray
from helpers import NodeProcess, RemoteParameters, assert_config_error
from rcl_interfaces.msg import Log, ParameterEvent
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_parameter_events
from sensor_msgs.msg import Image
from std_msgs.msg import String

from cam_guard.ros.transport import latched_qos
from cam_guard.testing.fault_injection import MjpegFaultServer

USER, PASSWORD = "admin", "s3cret-Pw"
# OpenCV prints every file name it opens at this level: a URL with its password, from the worker.
OPENCV_VERBOSE = {"OPENCV_LOG_LEVEL": "DEBUG", "OPENCV_VIDEOIO_DEBUG": "1"}


def reliable_late_joiner_qos() -> QoSProfile:
    return QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)


class Channels:
    """Everything a DDS participant on the network sees of the camera."""

    def __init__(self, probe) -> None:
        self.rosout = probe.subscribe(Log, "/rosout", reliable_late_joiner_qos())
        self.diagnostics = probe.subscribe(DiagnosticArray, "/diagnostics")
        self.states = probe.subscribe(String, "/camera_state", latched_qos())
        self.parameter_events = probe.subscribe(ParameterEvent, "/parameter_events", qos_profile_parameter_events)
        self.images = probe.subscribe(Image, "/image_raw")

    def leaks(self, output: str) -> list[str]:
        seen = {"log": output, "/rosout": "\n".join(str(m) for m in self.rosout.messages),
                "/diagnostics": "\n".join(str(m) for m in self.diagnostics.messages),
                "camera_state": "\n".join(m.data for m in self.states.messages)}
        return [channel for channel, text in seen.items() if PASSWORD in text]


def stall_and_recover(server: MjpegFaultServer, channels: Channels) -> None:
    """A stall and a dropped connection: the node logs, diagnoses and states the source each time."""
    channels.images.wait_count(5, timeout=30)
    for fault in (server.stall, server.drop):
        seen = len(channels.states.messages)
        fault()
        channels.states.wait_for(lambda ms, seen=seen: any(m.data in ("STALLED", "RECONNECTING") for m in ms[seen:]),
                                 10, "the fault noticed")
        server.resume()
        channels.states.wait_for(lambda ms: ms[-1].data == "STREAMING", 10, "STREAMING again")
    time.sleep(1.5)  # a diagnostics period with the recovery counted


def test_a_password_in_the_device_url_is_in_no_log_topic_or_diagnostics(probe):
    channels = Channels(probe)
    with MjpegFaultServer(320, 240, 30, path="/x.mjpg", credentials=(USER, PASSWORD)) as server:
        url = f"http://{USER}:{PASSWORD}@127.0.0.1:{server.port}/x.mjpg"
        with NodeProcess("cam_guard.camera_node", {"device": url, "stall_timeout": 0.5},
                         env=OPENCV_VERBOSE) as node:
            stall_and_recover(server, channels)
            code, _ = node.stop()
            output = node.output()
    assert code == 0
    assert "127.0.0.1" in output and "***@127.0.0.1" in output, "the source is still named, without its password"
    assert channels.leaks(output) == []
    assert channels.diagnostics.messages and channels.rosout.messages


def test_credentials_from_the_environment_keep_the_password_out_of_parameters_too(probe):
    channels = Channels(probe)
    with MjpegFaultServer(320, 240, 30, path="/x.mjpg", credentials=(USER, PASSWORD)) as server, \
            NodeProcess("cam_guard.camera_node", {"device": server.url, "credentials": "env:CAMERA_CREDENTIALS"},
                        env={**OPENCV_VERBOSE, "CAMERA_CREDENTIALS": f"{USER}:{PASSWORD}"}) as node:
        stall_and_recover(server, channels)  # frames arrive: the camera accepted the credentials
        params = RemoteParameters(probe, "/camera")
        values = params.get(*params.names())
        assert params.set(stall_timeout=0.6)[0].successful  # a parameter event this subscriber surely gets
        channels.parameter_events.wait_for(lambda ms: any(e.node == "/camera" for e in ms), 10, "a parameter event")
        code, _ = node.stop()
        output = node.output()
    assert code == 0
    assert "env:CAMERA_CREDENTIALS" in values
    assert not [v for v in values if PASSWORD in str(v)], "a parameter holds the password"
    assert not [e for e in channels.parameter_events.messages if PASSWORD in str(e)]
    assert channels.leaks(output) == []


def test_a_camera_refusing_the_credentials_says_so_without_them(probe):
    channels = Channels(probe)
    with MjpegFaultServer(320, 240, 30, path="/x.mjpg", credentials=(USER, "another")) as server, \
            NodeProcess("cam_guard.camera_node", {"device": server.url, "credentials": "env:CAMERA_CREDENTIALS",
                                                  "open_timeout": 1.0},
                        env={**OPENCV_VERBOSE, "CAMERA_CREDENTIALS": f"{USER}:{PASSWORD}"}) as node:
        channels.states.wait_for(lambda ms: any(m.data == "RECONNECTING" for m in ms), 30, "failed opens")
        deadline = time.monotonic() + 10
        while server.rejected_requests < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.5)  # a diagnostics period with the failure in it
        code, _ = node.stop()
        output = node.output()
    assert server.rejected_requests >= 2 and code == 0
    assert channels.leaks(output) == []


@pytest.mark.parametrize(("params", "message"), [
    ({"fallback_devices": [f"{USER}:{PASSWORD}@cam.local/stream"]}, "is not 'synthetic'"),  # the scheme forgotten
    ({"credentials": f"{USER}:{PASSWORD}"}, "not the secret itself"),  # the secret itself given
    ({"device": f"http://{USER}:{PASSWORD}@cam.local/x.mjpg", "credentials": "file:/no/such/camera.pw"},
     "cannot read the file"),
])
def test_error_messages_never_carry_the_password(ros, params, message):
    with NodeProcess("cam_guard.camera_node", {"device": "synthetic", **params}) as node:
        line = assert_config_error(node, message)
        output = node.output()
    assert PASSWORD not in line and PASSWORD not in output
