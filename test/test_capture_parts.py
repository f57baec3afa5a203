"""Frame ring, newest-only mailbox, source parsing and the synthetic pattern: no ROS."""

import os
import threading

import numpy as np
import pytest

from cam_guard.capture_supervisor import candidate_sources
from cam_guard.frame_ring import FrameRing, shm_dir
from cam_guard.latest import LatestValue
from cam_guard.sources import SourceError, parse_source
from cam_guard.synthetic import read_frame_counter, synthetic_frame


@pytest.fixture
def ring_path():
    path = os.path.join(shm_dir(), f"cam_guard-test-{os.getpid()}-{threading.get_ident()}")
    yield path
    if os.path.exists(path):
        os.unlink(path)


def test_frame_ring_hands_frames_between_mappings(ring_path):
    writer = FrameRing.create(ring_path, pixel_capacity=48, jpeg_capacity=16)
    reader = FrameRing.attach(ring_path)
    image = np.arange(48, dtype=np.uint8).reshape(4, 4, 3)
    layout = writer.write(1, image, b"\xff\xd8jpeg\xff\xd9")
    pixels, jpeg = reader.read(layout)
    np.testing.assert_array_equal(pixels, image)
    assert jpeg == b"\xff\xd8jpeg\xff\xd9"


def test_frame_ring_detects_a_reused_slot(ring_path):
    writer = FrameRing.create(ring_path, pixel_capacity=12, jpeg_capacity=0, slots=2)
    reader = FrameRing.attach(ring_path)
    frame = np.zeros((2, 2, 3), np.uint8)
    old = writer.write(1, frame, None)
    writer.write(3, frame, None)  # same slot as seq 1
    assert reader.read(old) is None


def test_frame_ring_refuses_oversized_frames_and_drops_oversized_jpeg(ring_path):
    writer = FrameRing.create(ring_path, pixel_capacity=12, jpeg_capacity=4)
    with pytest.raises(ValueError, match="exceeds"):
        writer.write(1, np.zeros((3, 3, 3), np.uint8), None)
    assert writer.write(2, np.zeros((2, 2, 3), np.uint8), b"12345").jpeg_len == 0


def test_latest_value_keeps_only_the_newest_and_counts_drops():
    box: LatestValue[int] = LatestValue()
    for i in range(5):
        box.put(i)
    assert box.take(timeout=0.1) == 4
    assert box.dropped == 4 and box.received == 5
    assert box.take(timeout=0.01) is None
    box.close()
    assert box.take(timeout=5) is None and box.closed


@pytest.mark.parametrize(("text", "kind"), [
    ("synthetic", "synthetic"), ("0", "v4l2"), ("/dev/video2", "v4l2"),
    ("/dev/v4l/by-id/usb-Cam-video-index0", "v4l2"), ("http://127.0.0.1:8080/x.mjpg", "ffmpeg"),
    ("rtsp://127.0.0.1/stream", "ffmpeg"),
])
def test_parse_source(text, kind):
    assert parse_source(text).kind == kind


def test_parse_source_refuses_nonsense(tmp_path):
    with pytest.raises(SourceError):
        parse_source("")
    with pytest.raises(SourceError, match="existing file"):
        parse_source(str(tmp_path / "missing.mp4"))
    video = tmp_path / "clip.avi"
    video.write_bytes(b"x")
    assert parse_source(str(video)).kind == "ffmpeg"


def test_candidates_put_primary_first_without_repeats():
    specs = candidate_sources("http://127.0.0.1:1/a", ["http://127.0.0.1:2/b", "http://127.0.0.1:1/a"], True)
    assert [s.target for s in specs] == ["http://127.0.0.1:1/a", "http://127.0.0.1:2/b"]


@pytest.mark.parametrize("index", [0, 1, 37, 1000, 65535])
def test_synthetic_counter_survives_jpeg(index):
    import cv2

    frame = synthetic_frame(index, 320, 240)
    decoded = cv2.imdecode(cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 50])[1], cv2.IMREAD_COLOR)
    assert read_frame_counter(decoded) == index
