"""camera_node as a real process, seen by a real subscriber over DDS."""

import os
import signal
import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from helpers import NodeProcess, assert_config_error, diagnostic_values, latest_camera_status, process_alive
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import String

from cam_guard.capture.synthetic import read_frame_counter
from cam_guard.common.frame_ring import shm_dir
from cam_guard.ros.image_conversion import from_image_msg, stamp_to_ns
from cam_guard.ros.transport import latched_qos
from cam_guard.testing.fault_injection import MjpegFaultServer

CAMERA = "cam_guard.camera_node"


def test_synthetic_source_publishes_frames_info_state_and_diagnostics(probe):
    images = probe.subscribe(Image, "/image_raw")
    infos = probe.subscribe(CameraInfo, "/camera_info")
    states = probe.subscribe(String, "/camera_state", latched_qos())
    diags = probe.subscribe(DiagnosticArray, "/diagnostics")
    with NodeProcess(CAMERA, {"device": "synthetic", "width": 320, "height": 240, "frame_id": "wrist_cam"}) as cam:
        msgs = images.wait_count(20, timeout=20)
        infos.wait_count(5, timeout=5)
        states.wait_for(lambda ms: ms and ms[-1].data == "STREAMING", timeout=5, what="STREAMING")
        diags.wait_for(lambda ms: latest_camera_status(diags) is not None, timeout=5, what="diagnostics")
        received_at = [t for t, _ in images.items]
        cam.stop()

    first = msgs[0]
    assert (first.width, first.height, first.encoding, first.step) == (320, 240, "bgr8", 960)
    assert first.header.frame_id == "wrist_cam"
    stamps = [stamp_to_ns(m.header.stamp) for m in msgs]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps), "stamps must strictly increase"
    # header.stamp is the capture time: before arrival, and not long before it.
    for stamp, arrival in zip(stamps, received_at, strict=False):
        assert 0 <= arrival - stamp / 1e9 < 1.0
    counters = [read_frame_counter(from_image_msg(m)) for m in msgs]
    assert counters == sorted(counters) and len(set(counters)) == len(counters), "no frame published twice"
    info = infos.messages[0]
    assert (info.width, info.height, info.header.frame_id) == (320, 240, "wrist_cam")
    assert stamp_to_ns(info.header.stamp) in set(stamps) | {stamp_to_ns(m.header.stamp) for m in images.messages}
    status = latest_camera_status(diags)
    values = diagnostic_values(status)
    assert status.level == DiagnosticStatus.OK, status.message
    assert values["state"] == "STREAMING" and values["source"] == "synthetic"
    assert values["asked"] == values["granted"] == "320x240 @ 30.0 fps", values
    assert int(values["frames_captured"]) > 0


def test_cam_guard_hz_reports_the_rate_a_newcomer_should_see(ros):
    with NodeProcess(CAMERA, {"device": "synthetic", "width": 320, "height": 240}) as cam, \
            NodeProcess("cam_guard.tools.topic_hz", args=["/image_raw", "--duration", "4"]) as hz:
        code = hz.wait(timeout=30)
        output = hz.output()
        cam.stop()
    assert code == 0, output
    rates = [float(line.split(": ")[1].split(" Hz")[0]) for line in output.splitlines() if " Hz, " in line]
    assert rates and 20 < rates[-1] < 40, output
    assert "320x240 bgr8" in output


def test_sigusr1_prints_every_threads_stack_and_the_node_keeps_running(probe):
    images = probe.subscribe(Image, "/image_raw")
    with NodeProcess(CAMERA, {"device": "synthetic", "width": 320, "height": 240}) as cam:
        images.wait_count(3, timeout=20)
        cam.proc.send_signal(signal.SIGUSR1)
        seen = len(images.items)
        images.wait_count(seen + 3, timeout=10)  # still streaming afterwards
        code, _ = cam.stop()
        output = cam.output()
    assert code == 0
    assert "capture-supervisor" in output or "_supervise" in output, output[-2000:]
    assert "(most recent call first)" in output


def test_rgb8_encoding_swaps_channels(probe):
    images = probe.subscribe(Image, "/image_raw")
    with NodeProcess(CAMERA, {"device": "synthetic", "width": 320, "height": 240, "encoding": "rgb8"}) as cam:
        msg = images.wait_count(3, timeout=20)[-1]
        cam.stop()
    assert msg.encoding == "rgb8"
    rgb = from_image_msg(msg)
    # The synthetic pattern's red channel is a constant 128 away from the drawn shapes.
    assert np.median(rgb[:, :, 0]) == 128
    assert np.median(rgb[:, :, 2]) != 128


def test_mjpeg_source_publishes_camera_jpeg_bytes_unchanged(probe):
    compressed = probe.subscribe(CompressedImage, "/image_raw/compressed")
    images = probe.subscribe(Image, "/image_raw")
    with MjpegFaultServer(640, 480, 30) as server, NodeProcess(CAMERA, {"device": server.url}) as cam:
        msgs = compressed.wait_count(10, timeout=20)
        raw = images.wait_count(10, timeout=5)
        sent = set(server.recent_jpegs)
        cam.stop()
    assert all(m.format == "jpeg" for m in msgs)
    assert all(bytes(m.data) in sent for m in msgs), "compressed frames must be the camera's own bytes"
    assert (raw[0].width, raw[0].height) == (640, 480)
    compressed_stamps = {stamp_to_ns(m.header.stamp) for m in msgs}
    assert compressed_stamps & {stamp_to_ns(m.header.stamp) for m in raw}, "both topics share capture stamps"


def test_camera_info_carries_the_calibration_file(probe, tmp_path):
    calibration = tmp_path / "wrist.yaml"
    calibration.write_text("""image_width: 320
image_height: 240
camera_name: wrist
camera_matrix: {rows: 3, cols: 3, data: [300.0, 0.0, 160.0, 0.0, 301.0, 120.0, 0.0, 0.0, 1.0]}
distortion_model: plumb_bob
distortion_coefficients: {rows: 1, cols: 5, data: [0.1, -0.2, 0.001, 0.002, 0.0]}
rectification_matrix: {rows: 3, cols: 3, data: [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]}
projection_matrix: {rows: 3, cols: 4, data: [300.0, 0.0, 160.0, 0.0, 0.0, 301.0, 120.0, 0.0, 0.0, 0.0, 1.0, 0.0]}
""")
    infos = probe.subscribe(CameraInfo, "/camera_info")
    with NodeProcess(CAMERA, {"device": "synthetic", "width": 320, "height": 240,
                              "camera_info_url": f"file://{calibration}"}) as cam:
        info = infos.wait_count(2, timeout=20)[-1]
        cam.stop()
    assert info.distortion_model == "plumb_bob"
    assert list(info.k) == [300.0, 0.0, 160.0, 0.0, 301.0, 120.0, 0.0, 0.0, 1.0]
    assert list(info.d) == [0.1, -0.2, 0.001, 0.002, 0.0] and info.p[0] == 300.0


@pytest.mark.parametrize(("params", "message"), [
    ({"width": 5}, "'width' is out of range"),
    ({"fps": 0.0}, "'fps' is out of range"),
    ({"width": "wide"}, "'width'"),
    ({"encoding": "yuv422"}, "'encoding' = 'yuv422' is not one of"),
    ({"qos": "fast"}, "'qos' = 'fast' is not one of"),
    ({"fourcc": "MJPEG"}, "'fourcc'"),
    ({"device": "/no/such/file.mp4"}, "device '/no/such/file.mp4'"),
    ({"camera_info_url": "file:///no/such/calibration.yaml"}, "cannot read calibration"),
])
def test_bad_parameter_gives_one_clear_line_and_exit_2(ros, params, message):
    with NodeProcess(CAMERA, {"device": "synthetic", **params}) as cam:
        assert_config_error(cam, message)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_stops_capture_and_exits_0_within_2_s(probe, sig):
    diags = probe.subscribe(DiagnosticArray, "/diagnostics")
    states = probe.subscribe(String, "/camera_state", latched_qos())
    with NodeProcess(CAMERA, {"device": "synthetic"}) as cam:
        states.wait_for(lambda ms: ms and ms[-1].data == "STREAMING", timeout=20, what="STREAMING")
        status = diags.wait_for(lambda ms: latest_camera_status(diags) is not None, timeout=5)
        worker_pid = int(diagnostic_values(latest_camera_status(diags))["worker_pid"])
        assert status and process_alive(worker_pid)
        code, took = cam.stop(sig, timeout=5)
    assert code == 0
    assert took < 2.0
    deadline = time.monotonic() + 2
    while process_alive(worker_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not process_alive(worker_pid), "capture worker outlived the node"
    assert not [f for f in os.listdir(shm_dir()) if f.startswith(f"cam_guard-capture-{cam.pid}-")]


def test_ctrl_c_while_a_node_is_still_starting_exits_0_without_a_traceback(ros, tmp_path):
    import subprocess
    import sys

    script = tmp_path / "interrupted_node.py"
    script.write_text(
        "from cam_guard.ros.runtime import GuardedNode, run_node\n"
        "class Starting(GuardedNode):\n"
        "    def __init__(self):\n"
        "        super().__init__('starting')\n"
        "        raise KeyboardInterrupt  # what SIGINT does to a node still in its constructor\n"
        "raise SystemExit(run_node(Starting))\n")
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
