"""A cell of cameras from one command: hilserl_graph --cameras front,wrist, real MJPEG sources, real DDS."""

import time
from pathlib import Path

from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import Vector3Stamped
from helpers import NodeProcess, diagnostic_values
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import String

from cam_guard.preview.overlay import NO_SIGNAL_BGR, banner_rows
from cam_guard.preview.tiles import CELL_WIDTH, tile_rects
from cam_guard.reward.grouping import auto_skew_ns
from cam_guard.ros.image_conversion import from_image_msg, stamp_to_ns
from cam_guard.ros.transport import latched_qos
from cam_guard.testing.fault_injection import MjpegFaultServer

SHIPPED_CONFIG = Path(__file__).resolve().parents[1] / "config" / "hilserl.yaml"
# reward_node's auto max_skew for this cell (30 and 15 fps), and 2 ms for a measured period a little long.
MAX_SKEW_NS = auto_skew_ns([1_000_000_000 // 30, 1_000_000_000 // 15]) + 2_000_000
WRIST_BLOCK = """
/wrist/camera:
  ros__parameters:
    fps: 15.0
    frame_id: wrist_optical
"""


def statuses(diags, name: str) -> list:
    return [s for array in diags.messages for s in array.status if s.name == name]


def tile_shows_no_signal(overlay: Image, tile: int, cameras: int = 2) -> bool:
    image = from_image_msg(overlay, "bgr8")
    rect = tile_rects(cameras, 240 / 320)[tile]
    region = rect.of(image)
    return tuple(int(v) for v in region[banner_rows(rect.height).start + 1, 2]) == NO_SIGNAL_BGR


def test_two_cameras_in_their_namespaces_one_yaml_and_a_stall_named_by_the_reward(probe, tmp_path):
    config = tmp_path / "cell.yaml"
    config.write_text(SHIPPED_CONFIG.read_text() + WRIST_BLOCK)  # the shipped file plus one per-camera block
    images = {name: probe.subscribe(Image, f"/{name}/image_raw") for name in ("front", "wrist")}
    compressed = probe.subscribe(CompressedImage, "/front/image_raw/compressed")
    infos = probe.subscribe(CameraInfo, "/wrist/camera_info")
    wrist_states = probe.subscribe(String, "/wrist/camera_state", latched_qos())
    reward_states = probe.subscribe(String, "/reward/state", latched_qos())
    rewards = probe.subscribe(Vector3Stamped, "/reward/stamped")
    previews = probe.subscribe(Image, "/preview/image")
    diags = probe.subscribe(DiagnosticArray, "/diagnostics")
    with MjpegFaultServer(320, 240) as front, MjpegFaultServer(320, 240) as wrist, \
            NodeProcess("cam_guard.tools.graph_launcher", env={"DISPLAY": ""},
                        args=["--cameras", "front,wrist", "--devices", f"{front.url},{wrist.url}",
                              "--config", str(config)]) as graph:
        rewards.wait_count(10, timeout=60)
        reward_states.wait_for(lambda ms: ms and ms[-1].data == "CLASSIFYING", 10, "CLASSIFYING")
        compressed.wait_count(1, timeout=10)
        infos.wait_count(1, timeout=10)
        diags.wait_for(lambda _: statuses(diags, "cam_guard: /front/camera") and
                       statuses(diags, "cam_guard: /wrist/camera"), 10, "diagnostics naming each camera")
        assert images["front"].messages[-1].header.frame_id == "front_camera", "unique by default"
        assert images["wrist"].messages[-1].header.frame_id == "wrist_optical", "the /wrist/camera block"
        assert infos.messages[-1].header.frame_id == "wrist_optical"
        assert compressed.messages[-1].format == "jpeg"
        assert diagnostic_values(statuses(diags, "cam_guard: /front/camera")[-1])["expected_hz"] == "30.00"
        assert diagnostic_values(statuses(diags, "cam_guard: /wrist/camera")[-1])["expected_hz"] == "15.00"
        overlay = previews.wait_count(1, timeout=10)[-1]
        assert (overlay.width, overlay.height) == (CELL_WIDTH, 480 + 28), "two 640x480 tiles and the bar"

        wrist.stall()
        stalled_at = time.time()
        # The wrist goes STALLED, then RECONNECTING while it reopens; the reward repeats what it says.
        reward_states.wait_for(lambda _: any(t > stalled_at and m.data in ("wrist STALLED", "wrist RECONNECTING")
                                             for t, m in reward_states.items), 10, "the reward naming the wrist")
        wrist_states.wait_for(lambda ms: ms[-1].data in ("STALLED", "RECONNECTING"), 5, "the wrist's own state")
        last_wrist = max(stamp_to_ns(m.header.stamp) for m in images["wrist"].messages)
        assert last_wrist / 1e9 < stalled_at + 0.1
        after_stall = [stamp_to_ns(m.header.stamp) for t, m in rewards.items if t > stalled_at + 0.1]
        assert all(s <= last_wrist + MAX_SKEW_NS for s in after_stall), \
            "a front frame newer than the wrist's last was classified beside it"
        seen = len(previews.items)
        previews.wait_for(lambda ms: any(tile_shows_no_signal(m, 1) and not tile_shows_no_signal(m, 0)
                                         for m in ms[seen:]), 10, "NO SIGNAL on the wrist tile only")
        reward_diag = diagnostic_values(statuses(diags, "cam_guard: /reward")[-1])
        assert reward_diag["cameras"] == "front, wrist"

        wrist.resume()
        resumed_at = time.time()
        reward_states.wait_for(lambda ms: ms[-1].data == "CLASSIFYING", 15, "classifying again")
        rewards.wait_for(lambda _: any(stamp_to_ns(m.header.stamp) / 1e9 > resumed_at for m in rewards.messages),
                         10, "rewards from frames after the wrist came back")
        code, _ = graph.stop(timeout=15)
        output = graph.output()
    assert code == 0, output[-3000:]
    assert "Traceback" not in output, output[output.find("Traceback") - 1500:][:4000]


def test_graph_refuses_a_camera_list_that_does_not_add_up_before_starting_anything(ros):
    with NodeProcess("cam_guard.tools.graph_launcher",
                     args=["--cameras", "front,wrist", "--devices", "synthetic"]) as graph:
        code = graph.wait(timeout=30)
        output = graph.output()
    assert code != 0 and "2 cameras (front, wrist) but 1 devices" in output
    assert "started" not in output and "Traceback" not in output
