"""preview_node as a real process: fed by this test over real DDS, or in hilserl_graph behind a real camera."""

import signal
import socket
import time

import cv2
import pytest
from geometry_msgs.msg import Vector3Stamped
from helpers import (
    NodeProcess,
    assert_config_error,
    banner_is_no_signal,
    frame_msg,
    free_port,
    publish_until,
    web_state,
)
from sensor_msgs.msg import Image
from std_msgs.msg import String

from cam_guard.preview.overlay import SUCCESS_BGR
from cam_guard.ros.image_conversion import from_image_msg, stamp_to_ns
from cam_guard.ros.transport import image_qos, latched_qos
from cam_guard.testing.mjpeg_viewer import ViewerProcess
from cam_guard.testing.polling import poll
from cam_guard.testing.preview_rate import CAMERA_FPS, measure_window, synthetic_graph

WINDOW_S = 6.0
CAMERA_KEPT_UP = 0.9  # a window counts when the camera published this share of its frames


def test_preview_draws_overlay_with_source_stamp_then_no_signal(probe):
    image_pub = probe.node.create_publisher(Image, "/image_raw", image_qos("reliable"))
    reward_pub = probe.node.create_publisher(Vector3Stamped, "/reward/stamped", 10)
    state_pub = probe.node.create_publisher(String, "/camera_state", latched_qos())
    previews = probe.subscribe(Image, "/preview/image")
    state_pub.publish(String(data="STREAMING"))
    sent: set[int] = set()

    def frame() -> Image:
        msg = frame_msg(60)
        sent.add(stamp_to_ns(msg.header.stamp))
        reward = Vector3Stamped()
        reward.header = msg.header
        reward.vector.x, reward.vector.y, reward.vector.z = 0.9, 0.5, 1.0
        reward_pub.publish(reward)
        return msg

    with NodeProcess("cam_guard.preview_node", {"stale_after": 0.5}, env={"DISPLAY": ""}) as node:
        publish_until(image_pub, frame, previews, 5)
        live = [m for m in previews.messages if stamp_to_ns(m.header.stamp) in sent]
        assert live, "overlay frames must carry the source frame's stamp"
        bottom = from_image_msg(live[-1], "bgr8")[-3, 100]
        assert tuple(int(v) for v in bottom) == SUCCESS_BGR
        stopped = time.time()
        previews.wait_for(lambda ms: any(banner_is_no_signal(m) for m in ms[len(live):]), 3, "NO SIGNAL")
        no_signal_at = next(t for t, m in previews.items if t > stopped and banner_is_no_signal(m))
        code, _ = node.stop()
    assert no_signal_at - stopped < 0.5 + 0.6
    assert code == 0


def test_preview_window_without_a_display_falls_back_to_the_topic(probe):
    image_pub = probe.node.create_publisher(Image, "/image_raw", image_qos("reliable"))
    previews = probe.subscribe(Image, "/preview/image")
    with NodeProcess("cam_guard.preview_node", {"show_window": True}, env={"DISPLAY": ""}) as node:
        publish_until(image_pub, lambda: frame_msg(1), previews, 3)
        code, _ = node.stop()
        output = node.output()
    assert code == 0 and "publishing preview/image only" in output
    assert cv2.__version__


@pytest.mark.parametrize("max_rate", [30.0, 15.0])
def test_preview_keeps_the_camera_rate_up_to_max_rate(probe, max_rate):
    # Before the fix every window came out at 0.52-0.58 at max_rate 30. Other processes share these
    # 2 cores: a window in which they starved the camera itself (under 0.9 of its 30 fps) says
    # nothing about the preview, and one in which they starved the preview is measured again.
    windows = []
    with synthetic_graph(probe, f"preview.max_rate={max_rate}") as (raw, previews, _graph):
        for _ in range(5):
            windows.append(window := measure_window(raw, previews, WINDOW_S))
            assert window.preview_frames <= max_rate * WINDOW_S + 4, windows  # + the pacer's burst, + 1 at the edges
            if (window.camera_frames >= CAMERA_KEPT_UP * CAMERA_FPS * WINDOW_S
                    and window.preview_frames >= 0.95 * min(window.camera_frames, max_rate * WINDOW_S)):
                break
        else:
            raise AssertionError(f"no window with the camera at its rate and the preview at >= 0.95 of "
                                 f"min(camera, max_rate): {windows}")


def test_web_viewers_and_a_stalled_one_leave_the_preview_rate_unchanged(probe):
    port = free_port()
    rounds = []
    with synthetic_graph(probe, f"preview.web_port={port}") as (raw, previews, _graph):
        # Rounds of (no viewer, viewers), so that load from other processes drifting over the
        # test hits both alike; another round while the viewers' share is below 0.95 of the other.
        for _ in range(3):
            baseline = measure_window(raw, previews, WINDOW_S)
            with ViewerProcess(f"http://127.0.0.1:{port}/stream.mjpg", readers=5, stalled=1) as viewers:
                poll(lambda: (s := web_state(port)) and s["viewers"] == 6, 10, "6 streams open on the node")
                watched = measure_window(raw, previews, WINDOW_S)
                frames = viewers.stop()
            rounds.append((baseline, watched))
            if watched.share >= 0.95 * baseline.share:
                break
        else:
            raise AssertionError(f"(without, with viewers): {rounds}")
    assert len(frames["reader"]) == 5 and min(frames["reader"]) >= 0.5 * watched.preview_frames, frames


def test_a_web_port_in_use_exits_2_with_one_line(ros):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with NodeProcess("cam_guard.preview_node", {"web_port": port}) as node:
            assert_config_error(node, f"cannot listen on 127.0.0.1:{port}")


def test_web_state_has_each_camera_of_a_cell_with_its_own_counters(ros):
    port = free_port()
    args = ["--cameras", "front,wrist", "--devices", "synthetic,synthetic", "--web-port", str(port),
            "--set", "camera.width=320", "--set", "camera.height=240"]
    with NodeProcess("cam_guard.tools.graph_launcher", args=args, env={"DISPLAY": ""}) as graph:
        def both_streaming() -> list[dict] | None:
            state = web_state(port)
            cameras = state["cameras"] if state else []
            ok = cameras and all(c["camera_state"] == "STREAMING" and not c["stale"] and "stalls" in c for c in cameras)
            return cameras if ok else None

        cameras = poll(both_streaming, 60, "both cameras streaming, with their camera_node's counters")
        graph.stop(signal.SIGINT, timeout=10)
    assert [(c["label"], c["image_topic"], c["node"]) for c in cameras] == [
        ("front", "/front/image_raw", "/front/camera"), ("wrist", "/wrist/image_raw", "/wrist/camera")]
