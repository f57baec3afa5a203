"""The one-command graph (hilserl_graph): three exec'd node processes, supervised."""

import os
import signal
import time
from pathlib import Path

import pytest
from geometry_msgs.msg import Vector3Stamped
from helpers import NodeProcess, banner_is_no_signal, children, error_lines, node_pid, process_alive
from rclpy.qos import QoSProfile
from sensor_msgs.msg import Image

from cam_guard.capture.synthetic import read_frame_counter
from cam_guard.ros.image_conversion import from_image_msg, stamp_to_ns

DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "config" / "hilserl.yaml"


def test_graph_flows_survives_a_camera_kill_and_stops_cleanly(probe, tmp_path):
    # Reliable and deep: this process also takes the overlays, and must not drop a frame it checks.
    images = probe.subscribe(Image, "/image_raw", QoSProfile(depth=200))
    rewards = probe.subscribe(Vector3Stamped, "/reward/stamped")
    previews = probe.subscribe(Image, "/preview/image")
    audit = tmp_path / "forks.log"
    with NodeProcess("cam_guard.tools.graph_launcher", env={"CAM_GUARD_FORK_AUDIT": str(audit), "DISPLAY": ""},
                     args=["--set", "camera.device=synthetic"]) as graph:
        previews.wait_count(20, timeout=30)
        rewards.wait_count(20, timeout=5)
        images.wait_count(10, timeout=10)  # topics are discovered one by one: sample once all flow
        previews.clear()
        rewards.clear()
        previews.wait_count(10, timeout=10)
        rewards.wait_count(10, timeout=10)
        # The camera keeps only its newest frame for each reader, so this process can miss a frame
        # that the reward or preview node got. Most sampled stamps must be frames seen here, and an
        # overlay must show the very frame whose stamp it carries (its number is in the pixels).
        def stamps_seen() -> set[int]:
            return {stamp_to_ns(m.header.stamp) for m in images.messages}

        sampled_rewards = [stamp_to_ns(m.header.stamp) for m in rewards.messages[-10:]]
        sampled_overlays = previews.messages[-10:]
        images.wait_for(lambda _: sum(s in stamps_seen() for s in sampled_rewards) >= 5
                        and sum(stamp_to_ns(m.header.stamp) in stamps_seen() for m in sampled_overlays) >= 5,
                        10, "the frames most sampled rewards and overlays were computed from")
        sources = {stamp_to_ns(m.header.stamp): m for m in images.messages}
        for overlay in sampled_overlays:
            source = sources.get(stamp_to_ns(overlay.header.stamp))
            if source is not None:
                assert read_frame_counter(from_image_msg(overlay)) == read_frame_counter(from_image_msg(source))

        camera = node_pid(graph.pid, "cam_guard.camera_node")
        workers = children(camera)
        os.kill(camera, signal.SIGKILL)
        killed_at = time.time()
        node_pid(graph.pid, "cam_guard.camera_node", other_than=camera)  # the launcher restarted it
        previews.wait_for(lambda ms: any(t > killed_at and banner_is_no_signal(m) for t, m in previews.items),
                          10, "NO SIGNAL after the camera died")
        previews.wait_for(lambda ms: any(stamp_to_ns(m.header.stamp) / 1e9 > killed_at + 0.1
                                         and not banner_is_no_signal(m) for m in ms), 20, "live preview again")
        assert all(not process_alive(w) for w in workers), "the killed camera's capture worker outlived it"

        nodes = children(graph.pid)
        grandchildren = [w for n in nodes for w in children(n)]
        code, _ = graph.stop(signal.SIGINT, timeout=10)
        output = graph.output()
    assert code == 0, output[-3000:]
    assert "camera exited with code -9; restarting" in output
    deadline = time.monotonic() + 3
    while any(process_alive(p) for p in [*nodes, *grandchildren]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [p for p in [*nodes, *grandchildren] if process_alive(p)], "orphan processes left behind"
    assert not audit.exists(), audit.read_text()
    assert "Traceback" not in output, output[output.find("Traceback") - 1500:][:4000]


def test_graph_does_not_restart_a_node_with_bad_parameters(ros):
    # A model file that is gone passes every parameter rule; only loading it fails (exit 2).
    with NodeProcess("cam_guard.tools.graph_launcher",
                     args=["--set", "reward.backend=onnx", "--set", "reward.model_path=/no/such/model.onnx",
                           "--set", "camera.device=synthetic"]) as graph:
        code = graph.wait(timeout=60)
        output = graph.output()
    assert code == 1
    assert "reward rejected its parameters" in output and "restarting in" not in output


@pytest.mark.parametrize(("override", "message"), [
    ("reward.threshold=abc", "--set reward.threshold=abc: parameter 'threshold' must be of type double, not string"),
    ("camera.width=1", "--set camera.width=1: parameter 'width' is out of range [16, 7680]"),
    ("reward.backend=foo", "parameter 'backend' = 'foo' is not one of: color, onnx, lerobot"),
    ("reward.treshold=0.7", "reward has no parameter 'treshold'"),
])
def test_graph_checks_every_parameter_before_starting_any_node(ros, override, message):
    with NodeProcess("cam_guard.tools.graph_launcher", args=["--set", override]) as graph:
        code = graph.wait(timeout=60)
        output = graph.output()
    assert code == 2, output
    errors = error_lines(output)
    assert len(errors) == 1 and message in errors[0], output
    assert "started" not in output and "Traceback" not in output


def test_graph_refuses_a_domain_dds_has_no_ports_for_instead_of_restarting_its_nodes(ros):
    with NodeProcess("cam_guard.tools.graph_launcher", args=["--set", "camera.device=synthetic"],
                     env={"ROS_DOMAIN_ID": "233"}) as graph:
        code = graph.wait(timeout=60)
        output = graph.output()
    assert code == 2, output
    errors = error_lines(output)
    assert len(errors) == 1 and "ROS_DOMAIN_ID='233' is not a domain DDS can use" in errors[0], output
    assert "started" not in output and "Traceback" not in output


def test_graph_checks_the_yaml_before_starting_any_node(ros, tmp_path):
    config = tmp_path / "hilserl.yaml"
    config.write_text(DEFAULT_CONFIG.read_text().replace("fps: 30.0", "fps: 30"))  # an integer: rclpy refuses it
    with NodeProcess("cam_guard.tools.graph_launcher", args=["--config", str(config)]) as graph:
        code = graph.wait(timeout=60)
        output = graph.output()
    assert code == 2 and "/camera: parameter 'fps' must be of type double, not integer" in output, output
    assert "started" not in output


def test_graph_rejects_a_malformed_override(ros):
    with NodeProcess("cam_guard.tools.graph_launcher", args=["--set", "nonsense"]) as graph:
        code = graph.wait(timeout=30)
        output = graph.output()
    assert code != 0 and "NODE.PARAM=VALUE" in output and "Traceback" not in output


def test_nodes_do_not_outlive_a_killed_launcher(ros):
    with NodeProcess("cam_guard.tools.graph_launcher", args=["--set", "camera.device=synthetic"]) as graph:
        node_pid(graph.pid, "cam_guard.preview_node")
        camera = node_pid(graph.pid, "cam_guard.camera_node")
        deadline = time.monotonic() + 20
        while not children(camera) and time.monotonic() < deadline:  # its capture workers
            time.sleep(0.05)
        family = [*children(graph.pid), *children(camera)]
        graph.stop(signal.SIGKILL)
    deadline = time.monotonic() + 5
    while any(process_alive(p) for p in family) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [p for p in family if process_alive(p)], "nodes kept running (and holding the camera) without a launcher"
