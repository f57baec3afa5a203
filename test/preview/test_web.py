"""The web view's server over real sockets on 127.0.0.1, fed by this test instead of a node (no ROS)."""

import json
import re
import urllib.error
import urllib.request
from collections.abc import Iterator

import cv2
import numpy as np
import pytest

from cam_guard.capture.synthetic import read_frame_counter, synthetic_frame
from cam_guard.preview.overlay import OverlayInfo
from cam_guard.preview.web import MAX_STREAMS, PreviewWeb
from cam_guard.preview.web_state import PreviewState
from cam_guard.testing.mjpeg_viewer import MjpegViewer
from cam_guard.testing.polling import poll


@pytest.fixture
def web() -> Iterator[PreviewWeb]:
    server = PreviewWeb("127.0.0.1", 0, [("camera", "/image_raw")], send_timeout_s=1.0)
    yield server
    server.close()


def info(**kw) -> OverlayInfo:
    base = {"probability": 0.8, "threshold": 0.5, "camera_state": "STREAMING", "frame_age_s": 0.01, "fps": 30.0}
    return OverlayInfo(**{**base, **kw})


def get(web: PreviewWeb, path: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{web.port}{path}", timeout=10) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read()


def frame(index: int, noisy: bool = False) -> np.ndarray:
    image = synthetic_frame(index, 640, 480)
    if noisy:  # incompressible below the frame number: ~300 KB per JPEG, so a stalled socket fills at once
        image[32:] = np.random.default_rng(index).integers(0, 256, image[32:].shape, np.uint8)
    return image


def counter(jpeg: bytes) -> int:
    return read_frame_counter(cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR))


def test_page_is_self_contained_html(web):
    status, content_type, body = get(web, "/")
    page = body.decode()
    assert status == 200 and content_type.startswith("text/html")
    external = re.findall(r"""(?:src|href)\s*=\s*["'](?:https?:)?//|@import|url\(\s*["']?(?:https?:)?//""", page)
    assert not external, "no external resources: robots are often offline"
    assert all(x in page for x in ('id="overlay"', 'id="plot"', 'id="probability"', "stream.mjpg", "state.json"))
    assert get(web, "/no/such/page")[0] == 404


def test_state_json_reports_what_the_node_fed_and_history_since(web):
    assert json.loads(get(web, "/state.json")[2])["cameras"][0]["camera_state"] == "UNKNOWN"
    web.show(frame(1), [info(camera_state="STREAMING", fps=29.5)], stamp=1000.0)
    for i in range(5):
        web.state.reward(stamp=1000.0 + i, probability=i / 10, threshold=0.4, success=i / 10 >= 0.4)
    web.state.diagnostic("cam_guard: /camera", 0, "streaming",
                         {"state": "STREAMING", "rate_hz": "30.00", "stalls": "2", "reconnect_attempts": "3",
                          "recoveries": "1"}, now=1.0)
    web.state.diagnostic("cam_guard: /reward", 0, "classifying", {"frames_received": "9"}, now=1.0)
    status, content_type, body = get(web, "/state.json?since=1002.0")
    state = json.loads(body)
    assert status == 200 and content_type == "application/json"
    [camera] = state["cameras"]
    assert camera["camera_state"] == "STREAMING" and camera["fps"] == 29.5 and not camera["stale"]
    assert camera["label"] == "camera" and camera["image_topic"] == "/image_raw"
    assert state["probability"] == 0.4 and state["threshold"] == 0.4 and state["success"] is True
    assert state["history"] == [[1003.0, 0.3], [1004.0, 0.4]]
    assert state["server_id"] == web.server_id
    # The one camera_node's counters (the reward node's status carries none).
    assert (camera["stalls"], camera["reconnect_attempts"], camera["recoveries"]) == (2, 3, 1)
    assert camera["node"] == "/camera" and camera["level"] == "OK" and camera["rate_hz"] == 30.0
    assert get(web, "/state.json?since=soon")[0] == 400


def test_state_goes_stale_when_frames_stop(web):
    web.show(frame(1), [info(frame_age_s=1.5, camera_state="STALLED")], stamp=1.0)
    [camera] = json.loads(get(web, "/state.json")[2])["cameras"]
    assert camera["stale"] and camera["camera_state"] == "STALLED" and camera["frame_age_s"] >= 1.5


def test_each_camera_gets_the_counters_of_the_camera_node_in_its_namespace():
    state = PreviewState([("front", "/front/image_raw"), ("wrist", "/wrist/image_raw")])
    state.drawn([info(camera_state="STREAMING"), info(camera_state="STALLED", frame_age_s=3.0)], now=10.0)
    for node, stalls in (("/wrist/camera", "4"), ("/front/camera", "0"), ("/other/camera", "9")):
        state.diagnostic(f"cam_guard: {node}", 2 if stalls == "4" else 0, "m",
                         {"stalls": stalls, "reconnect_attempts": "1", "recoveries": "0", "rate_hz": ""}, now=9.0)
    front, wrist = state.snapshot(since=0.0, now=10.0)["cameras"]
    assert (front["label"], front["node"], front["stalls"], front["stale"]) == ("front", "/front/camera", 0, False)
    assert (wrist["label"], wrist["node"], wrist["stalls"], wrist["stale"]) == ("wrist", "/wrist/camera", 4, True)
    assert wrist["level"] == "ERROR" and wrist["rate_hz"] is None and wrist["status_age_s"] == 1.0


def test_stream_is_multipart_jpeg_with_the_source_stamp(web):
    viewer = MjpegViewer(f"http://127.0.0.1:{web.port}/stream.mjpg")
    try:
        for index in range(1, 4):
            web.show(frame(index), [info()], stamp=100.0 + index)
            viewer.wait_frames(index, timeout=10)  # one at a time: each is the newest when sent
            assert counter(viewer.last_jpeg) == index
            assert float(viewer.part_headers["x-timestamp"]) == 100.0 + index
        assert viewer.headers["content-type"].startswith("multipart/x-mixed-replace; boundary=")
    finally:
        viewer.close()


def test_five_viewers_share_one_encoding_per_frame(web):
    viewers = [MjpegViewer(f"http://127.0.0.1:{web.port}/stream.mjpg") for _ in range(5)]
    try:
        poll(lambda: web.streams == 5, 10, "5 streams open")
        for index in range(1, 21):
            web.show(frame(index), [info()], stamp=float(index))
            for viewer in viewers:  # every viewer gets every frame here: the test waits for them
                viewer.wait_frames(index, timeout=10)
        assert web.fanout.encoded == 20, "one JPEG per frame, not one per viewer"
        assert all(counter(v.last_jpeg) == 20 for v in viewers)
    finally:
        for viewer in viewers:
            viewer.close()


def test_a_viewer_that_stops_reading_holds_up_no_one_and_is_dropped(web):
    stalled = MjpegViewer(f"http://127.0.0.1:{web.port}/stream.mjpg", stall=True)
    reader = MjpegViewer(f"http://127.0.0.1:{web.port}/stream.mjpg")
    try:
        poll(lambda: web.streams == 2, 10, "2 streams open")
        # Lockstep with the reader: if the stalled viewer's full socket held up the fanout or the
        # reader, this would time out. 30 frames of ~300 KB are far more than its buffers hold.
        for index in range(1, 31):
            web.show(frame(index, noisy=True), [info()], stamp=float(index))
            reader.wait_frames(index, timeout=10)
            assert counter(reader.last_jpeg) == index
        poll(lambda: web.streams == 1, 10, "the stalled stream dropped after send_timeout_s")
        web.show(frame(31), [info()], stamp=31.0)
        reader.wait_frames(31, timeout=10)
    finally:
        stalled.close()
        reader.close()


def test_streams_beyond_the_limit_are_refused_and_close_ends_them():
    web = PreviewWeb("127.0.0.1", 0, [("camera", "/image_raw")])
    viewers = [MjpegViewer(f"http://127.0.0.1:{web.port}/stream.mjpg") for _ in range(MAX_STREAMS)]
    try:
        poll(lambda: web.streams == MAX_STREAMS, 10, f"{MAX_STREAMS} streams open")
        assert get(web, "/stream.mjpg")[0] == 503
        web.show(frame(1), [info()], stamp=1.0)
        viewers[0].wait_frames(1, timeout=10)
        web.close()
        poll(lambda: not any(v.running for v in viewers), 10, "every stream ended by close()")
    finally:
        for viewer in viewers:
            viewer.close()


def test_a_port_in_use_is_an_os_error(web):
    with pytest.raises(OSError):
        PreviewWeb("127.0.0.1", web.port, [("camera", "/image_raw")])
