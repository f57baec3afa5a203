"""What real cameras do that is not a fault, through a camera_node process (issue 19): padded JPEGs.

Sources: the project's MJPEG server and ffmpeg's own MJPEG-over-HTTP server (a third party's framing).
"""

import os
import shutil

import pytest
from sensor_msgs.msg import CompressedImage

from cam_guard.capture.synthetic import read_frame_counter
from cam_guard.ros.image_conversion import from_image_msg
from cam_guard.testing.fault_injection import FfmpegMjpegServer, MjpegFaultServer, synthetic_jpeg
from cam_guard.testing.harness import CameraUnderTest, start_camera

# CI runs as root and installs ffmpeg (scripts/apt-packages.txt): there the test must run, not skip.
needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None and os.geteuid() != 0,
                                  reason="ffmpeg not installed (Debian package ffmpeg; not root, so not installed)")


@pytest.fixture
def cameras():
    """Camera nodes started by a test; gone afterwards whatever happened."""
    started: list[CameraUnderTest] = []
    yield started
    for camera in started:
        camera.node.__exit__(None, None, None)


def stop(camera: CameraUnderTest) -> None:
    code, _ = camera.node.stop(timeout=5)
    assert code == 0, camera.node.output()[-2000:]


@pytest.mark.parametrize("fill", [b"\0", b"\xff\xd9stale bytes of an earlier frame\xff\xd8"], ids=["zero", "stale"])
def test_frames_padded_after_eoi_are_published_cut_at_their_eoi(probe, cameras, fill):
    compressed = probe.subscribe(CompressedImage, "/image_raw/compressed")
    with MjpegFaultServer(320, 240, 30) as server:
        server.pad(16, 1040, fill)
        camera = start_camera(probe, server.url, width=320, height=240)
        cameras.append(camera)
        msgs = compressed.wait_count(20, timeout=10)
        sent = list(server.recent_jpegs)
        values = camera.diagnostics()
        stop(camera)
    for msg in msgs:
        data = bytes(msg.data)
        assert data.endswith(b"\xff\xd9")
        # Sent with at least 16 bytes after it: the camera's bytes up to its EOI, padding cut.
        assert any(p.startswith(data) and len(p) - len(data) >= 16 for p in sent)
    counters = [read_frame_counter(from_image_msg(m)) for m in camera.images.messages]
    assert counters == sorted(set(counters)) and len(counters) >= 10
    assert values["bad_frames"] == "0" and values["stalls"] == "0", values


@needs_ffmpeg
def test_padded_frames_from_ffmpegs_own_server_are_published(probe, cameras):
    compressed = probe.subscribe(CompressedImage, "/image_raw/compressed")
    jpegs = [synthetic_jpeg(i, 320, 240) for i in range(60)]
    with FfmpegMjpegServer([j + bytes(16 + i * 17 % 1025) for i, j in enumerate(jpegs)], fps=30) as server:
        camera = start_camera(probe, server.url, width=320, height=240)
        cameras.append(camera)
        msgs = compressed.wait_count(20, timeout=10)
        values = camera.diagnostics()
        stop(camera)
    assert all(bytes(m.data) in jpegs for m in msgs), "compressed must be the JPEG ffmpeg sent, padding cut"
    assert values["bad_frames"] == "0" and values["stalls"] == "0", values

