"""Parameters changed while the nodes run, through the parameter services (`ros2 param set`, rqt_reconfigure).

Each change must show on the topics within APPLY_BOUND_S; a rejected value must say why and change nothing.
"""

import time

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import Vector3Stamped
from helpers import (
    NodeProcess,
    Recorder,
    RemoteParameters,
    banner_is_no_signal,
    diagnostic_values,
    frame_msg,
    latest_camera_status,
    process_alive,
    publish_until,
    publish_until_seen,
)
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import String

from cam_guard.preview.overlay import BAR_HEIGHT
from cam_guard.ros.image_conversion import from_image_msg
from cam_guard.ros.transport import image_qos, latched_qos
from cam_guard.testing.fault_injection import MjpegFaultServer

APPLY_BOUND_S = 3.0


def test_reward_threshold_and_colour_rule_change_live_and_bad_values_change_nothing(probe):
    pub = probe.node.create_publisher(Image, "/image_raw", image_qos("reliable"))
    stamped = probe.subscribe(Vector3Stamped, "/reward/stamped")
    block_right = lambda: frame_msg(60)  # noqa: E731  (the synthetic block in the right half)
    with NodeProcess("cam_guard.reward_node", {"threshold": 0.5}) as node:
        publish_until(pub, block_right, stamped, 3)
        assert stamped.messages[-1].vector.x == 1.0 and stamped.messages[-1].vector.y == 0.5
        params = RemoteParameters(probe, "/reward")

        [result] = params.set(threshold=0.7)
        assert result.successful, result.reason
        publish_until_seen(pub, block_right, stamped, lambda ms: ms[-1].vector.y == 0.7, APPLY_BOUND_S,
                           "reward/stamped carrying the new threshold")

        rejected = params.set(threshold=2.0, backend="onnx", crops=["1,2"], color__hsv_low=[1, 2])
        assert [r.successful for r in rejected] == [False] * 4
        assert "out of range" in rejected[0].reason
        assert "read-only" in rejected[1].reason
        assert "top,left,height,width" in rejected[2].reason
        assert "three values" in rejected[3].reason
        assert params.get("threshold", "backend") == [0.7, "color"]

        [result] = params.set(color__roi=[0.0, 0.0, 0.5, 1.0])  # look at the left half instead
        assert result.successful, result.reason
        publish_until_seen(pub, block_right, stamped, lambda ms: ms[-1].vector.x == 0.0, APPLY_BOUND_S,
                           "probability 0 once the rule looks where the block is not")
        assert stamped.messages[-1].vector.y == 0.7
        code, _ = node.stop()
        output = node.output()
    assert code == 0
    assert "set threshold = 0.7" in output


def camera_status(diags: Recorder) -> dict[str, str]:
    status = latest_camera_status(diags)
    return {} if status is None else diagnostic_values(status)


def test_camera_capture_settings_go_to_a_fresh_worker_and_bad_values_change_nothing(probe):
    images = probe.subscribe(Image, "/image_raw")
    states = probe.subscribe(String, "/camera_state", latched_qos())
    diags = probe.subscribe(DiagnosticArray, "/diagnostics")
    with NodeProcess("cam_guard.camera_node", {"device": "synthetic", "width": 640, "height": 480}) as node:
        images.wait_for(lambda ms: ms and (ms[-1].width, ms[-1].height) == (640, 480), 30, "640x480 frames")
        diags.wait_for(lambda _: camera_status(diags).get("worker_pid"), 10, "diagnostics naming the worker")
        old_worker = int(camera_status(diags)["worker_pid"])
        params = RemoteParameters(probe, "/camera")

        rejected = params.set(width=5, fourcc="MJPEG", device="/no/such/file.mp4", qos="sensor_data")
        assert [r.successful for r in rejected] == [False] * 4
        assert "out of range" in rejected[0].reason and "4 characters" in rejected[1].reason
        assert "/no/such/file.mp4" in rejected[2].reason and "read-only" in rejected[3].reason
        assert params.get("width", "device") == [640, "synthetic"]

        states.clear()
        asked = time.monotonic()
        assert all(r.successful for r in params.set(width=320, height=240))
        images.wait_for(lambda ms: (ms[-1].width, ms[-1].height) == (320, 240), APPLY_BOUND_S, "320x240 frames")
        took = time.monotonic() - asked
        states.wait_for(lambda ms: [m.data for m in ms][-2:] == ["RECONFIGURING", "STREAMING"], 5,
                        "RECONFIGURING, then STREAMING")
        assert not process_alive(old_worker), "the old capture worker still runs"

        assert params.set(encoding="rgb8")[0].successful
        images.wait_for(lambda ms: ms[-1].encoding == "rgb8", APPLY_BOUND_S, "rgb8 frames")
        code, _ = node.stop()
    assert code == 0 and took < APPLY_BOUND_S


def test_camera_watchdog_timings_apply_at_once(probe):
    states = probe.subscribe(String, "/camera_state", latched_qos())
    with MjpegFaultServer(320, 240, 30) as server, \
            NodeProcess("cam_guard.camera_node", {"device": server.url, "stall_timeout": 0.5}) as node:
        states.wait_for(lambda ms: ms and ms[-1].data == "STREAMING", 30, "STREAMING")
        params = RemoteParameters(probe, "/camera")
        assert params.set(stall_timeout=5.0)[0].successful
        server.stall()
        time.sleep(1.5)  # three times the old stall_timeout: the old timing would have fired
        assert states.messages[-1].data == "STREAMING", [m.data for m in states.messages]
        asked = time.monotonic()
        assert params.set(stall_timeout=0.3)[0].successful  # the stall is 1.5 s old: overdue at once
        states.wait_for(lambda ms: ms[-1].data in ("STALLED", "RECONNECTING"), APPLY_BOUND_S, "the stall")
        took = time.monotonic() - asked
        server.resume()
        code, _ = node.stop()
    assert code == 0 and took < 1.0


def compressed_publishers(probe) -> int:
    return len(probe.node.get_publishers_info_by_topic("/image_raw/compressed"))


def test_compressed_images_are_advertised_only_while_the_source_sends_jpeg(probe):
    images = probe.subscribe(Image, "/image_raw")
    compressed = probe.subscribe(CompressedImage, "/image_raw/compressed")
    with MjpegFaultServer(320, 240, 30) as server, \
            NodeProcess("cam_guard.camera_node", {"device": "synthetic", "width": 320, "height": 240}) as node:
        images.wait_count(30, timeout=30)  # a second of frames: time enough for discovery
        assert compressed_publishers(probe) == 0, "a raw-only source advertises image_raw/compressed"

        params = RemoteParameters(probe, "/camera")
        assert params.set(device=server.url)[0].successful  # live: the MJPEG camera
        compressed.wait_count(5, timeout=10)
        assert compressed_publishers(probe) == 1

        assert params.set(device="synthetic")[0].successful
        deadline = time.monotonic() + 10
        while compressed_publishers(probe) and time.monotonic() < deadline:  # discovery has no event here
            time.sleep(0.05)
        assert compressed_publishers(probe) == 0, "still advertised after the source stopped sending JPEG"
        code, _ = node.stop()
    assert code == 0


def threshold_line_x(msg: Image) -> int | None:
    """Where the overlay's white threshold line crosses the probability bar (right of the text), if drawn."""
    image = from_image_msg(msg, "bgr8")
    row = image[image.shape[0] - BAR_HEIGHT // 2, 250:]
    white = np.flatnonzero((row > 240).all(axis=1))
    return None if white.size == 0 else 250 + int(white.mean())


def test_preview_draws_the_reward_nodes_threshold_and_follows_it_live(probe):
    pub = probe.node.create_publisher(Image, "/image_raw", image_qos("reliable"))
    previews = probe.subscribe(Image, "/preview/image")
    block_right = lambda: frame_msg(60)  # noqa: E731
    with NodeProcess("cam_guard.preview_node", env={"DISPLAY": ""}) as preview, \
            NodeProcess("cam_guard.reward_node", {"threshold": 0.5}) as reward:
        publish_until(pub, block_right, previews, 3)
        assert "threshold" not in RemoteParameters(probe, "/preview").names(), "one threshold: the reward node's"
        at = lambda value: round(value * 639)  # noqa: E731  (the line's column in a 640 wide frame)
        publish_until_seen(pub, block_right, previews, lambda ms: abs((threshold_line_x(ms[-1]) or 0) - at(0.5)) <= 2,
                           20, "the line at the reward node's 0.5")
        assert RemoteParameters(probe, "/reward").set(threshold=0.8)[0].successful
        took = publish_until_seen(pub, block_right, previews,
                                  lambda ms: abs((threshold_line_x(ms[-1]) or 0) - at(0.8)) <= 2, APPLY_BOUND_S,
                                  "the line moved to 0.8")
        reward.stop()
        code, _ = preview.stop()
    assert code == 0 and took < APPLY_BOUND_S


def test_preview_rate_staleness_and_window_change_live(probe):
    pub = probe.node.create_publisher(Image, "/image_raw", image_qos("reliable"))
    previews = probe.subscribe(Image, "/preview/image")
    with NodeProcess("cam_guard.preview_node", {"max_rate": 30.0, "stale_after": 5.0}, env={"DISPLAY": ""}) as node:
        publish_until(pub, lambda: frame_msg(1), previews, 3)
        params = RemoteParameters(probe, "/preview")
        assert params.set(max_rate=2.0, stale_after=0.3, show_window=True)[0].successful
        time.sleep(0.5)  # the settings are in force
        previews.clear()
        start = time.monotonic()
        while time.monotonic() - start < 3.0:  # 20 fps for 3 s
            pub.publish(frame_msg(1))
            time.sleep(0.05)
        drawn = len(previews.messages)
        stopped = time.time()
        previews.wait_for(lambda ms: any(banner_is_no_signal(m) for m in ms[drawn:]), APPLY_BOUND_S, "NO SIGNAL")
        no_signal_after = next(t for t, m in previews.items[drawn:] if banner_is_no_signal(m)) - stopped
        code, _ = node.stop()
        output = node.output()
    assert drawn <= 2.0 * 3 + 4, f"{drawn} overlays in 3 s at max_rate 2 (+ the pacer's burst of 3)"
    assert no_signal_after < 0.3 + 0.6, "NO SIGNAL after the new stale_after"
    assert "publishing preview/image only" in output, "show_window switched on live tried to open a window"
    assert code == 0
