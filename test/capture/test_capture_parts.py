"""Source parsing, recovery candidates and the synthetic pattern: no ROS."""

import os

import pytest

from cam_guard.capture.sources import SourceError, parse_source
from cam_guard.capture.supervisor import candidate_sources
from cam_guard.capture.synthetic import read_frame_counter, synthetic_frame


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
    pipe = tmp_path / "camera.mjpg"
    os.mkfifo(pipe)
    assert parse_source(str(pipe)).kind == "ffmpeg"


def test_candidates_put_primary_first_without_repeats():
    specs = candidate_sources("http://127.0.0.1:1/a", ["http://127.0.0.1:2/b", "http://127.0.0.1:1/a"], True)
    assert [s.target for s in specs] == ["http://127.0.0.1:1/a", "http://127.0.0.1:2/b"]


@pytest.mark.parametrize("index", [0, 1, 37, 1000, 65535])
def test_synthetic_counter_survives_jpeg(index):
    import cv2

    frame = synthetic_frame(index, 320, 240)
    decoded = cv2.imdecode(cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 50])[1], cv2.IMREAD_COLOR)
    assert read_frame_counter(decoded) == index
