"""What the launchers decide before and after a node runs (cam_guard.tools.graph_config; the launch
file's use of it is in test_packaging), and the shipped YAML reaching nodes in a namespace (a real node)."""

from pathlib import Path

import pytest
import yaml
from helpers import NodeProcess, RemoteParameters

from cam_guard.ros.parameters import ConfigError
from cam_guard.tools.graph_config import (
    LAUNCH_ARGUMENTS,
    PlannedNode,
    check_graph,
    launch_overrides,
    parameter_names,
    parameters_in_file,
    respawn_delay,
)

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "config" / "hilserl.yaml"


def test_respawn_only_after_a_crash_or_a_camera_that_gave_up():
    assert respawn_delay(0, shutting_down=False) is None, "a clean exit"
    assert respawn_delay(2, shutting_down=False) is None, "a configuration error would only come back"
    assert respawn_delay(3, shutting_down=False) == 1.0, "the camera gave up: try a fresh one"
    assert respawn_delay(-9, shutting_down=False) == 1.0, "killed"
    assert respawn_delay(-9, shutting_down=True) is None, "the launch is stopping everything"


def test_parameter_files_apply_as_rcl_applies_them():
    tree = yaml.safe_load("""
/**:
  ros__parameters: {use_sim_time: false, width: 100}
/**/camera:
  ros__parameters: {width: 640, color: {roi: [0.0, 0.0, 1.0, 1.0]}}
front:
  camera:
    ros__parameters: {width: 320}
/*/reward:
  ros__parameters: {threshold: 0.7}
camera:
  ros__parameters: {height: 240}
""")
    assert parameters_in_file(tree, "/front/camera") == {"use_sim_time": False, "width": 320,
                                                         "color.roi": [0.0, 0.0, 1.0, 1.0]}
    assert parameters_in_file(tree, "/camera") == {"use_sim_time": False, "width": 640, "height": 240,
                                                   "color.roi": [0.0, 0.0, 1.0, 1.0]}
    assert parameters_in_file(tree, "/a/b/camera")["width"] == 640, "** spans any number of namespaces"
    assert "threshold" in parameters_in_file(tree, "/cell/reward")
    assert "threshold" not in parameters_in_file(tree, "/reward"), "* is exactly one namespace"
    assert "threshold" not in parameters_in_file(tree, "/a/b/reward")


def test_the_shipped_yaml_reaches_every_node_in_any_namespace():
    tree = yaml.safe_load(SHIPPED.read_text())
    for executable, name in (("camera_node", "camera"), ("reward_node", "reward"), ("preview_node", "preview")):
        for fqn in (f"/{name}", f"/front/{name}", f"/robot1/cell/{name}"):
            given, declared = parameters_in_file(tree, fqn), set(parameter_names(executable))
            assert given and set(given) <= declared, (fqn, set(given) - declared)
    check_graph([SHIPPED], [PlannedNode(e, f"/ns/{n}", {}) for e, n in
                            (("camera_node", "camera"), ("reward_node", "reward"), ("preview_node", "preview"))])


def test_launch_arguments_become_typed_parameters_or_one_clear_error():
    assert launch_overrides({}) == {"preview_node": {"show_window": False}}, "'' keeps the YAML's value"
    assert launch_overrides({"threshold": "1", "headless": "false", "model": "/m.onnx", "web_port": "8080"}) == {
        "reward_node": {"threshold": 1.0, "model_path": "/m.onnx"}, "preview_node": {"show_window": True,
                                                                                    "web_port": 8080}}
    for arguments, message in (({"threshold": "abc"}, "launch argument threshold:=abc: parameter 'threshold' must"),
                               ({"threshold": "2.0"}, "'threshold' is out of range"),
                               ({"backend": "foo"}, "'backend' = 'foo' is not one of"),
                               ({"headless": "maybe"}, "launch argument headless:=maybe")):
        with pytest.raises(ConfigError, match=message):
            launch_overrides(arguments)
    assert {a.name for a in LAUNCH_ARGUMENTS} == {"config", "cameras", "devices", "device", "backend", "model",
                                                  "threshold", "headless", "web_port", "web_host", "transport"}
    assert launch_overrides({"transport": "compressed", "web_host": "0.0.0.0"}) == {
        "reward_node": {"transport": "compressed"},
        "preview_node": {"show_window": False, "transport": "compressed", "web_host": "0.0.0.0"}}
    with pytest.raises(ConfigError, match="launch argument transport:=jpeg: parameter 'transport' = 'jpeg' is not"):
        launch_overrides({"transport": "jpeg"})


def test_check_graph_names_the_node_and_its_reason(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(SHIPPED.read_text().replace("width: 640", "width: wide"))
    with pytest.raises(ConfigError, match=r"^/front/camera: parameter 'width' must be of type integer, not string"):
        check_graph([bad], [PlannedNode("camera_node", "/front/camera", {})])
    with pytest.raises(ConfigError, match=r"^/camera: device '/no/such/file\.mp4'"):
        check_graph([SHIPPED], [PlannedNode("camera_node", "/camera", {"device": "/no/such/file.mp4"})])
    broken = tmp_path / "broken.yaml"
    broken.write_text("camera: [unclosed\n")
    with pytest.raises(ConfigError, match="cannot read parameter file"):
        check_graph([broken], [])


def test_a_node_in_a_namespace_gets_the_shipped_yaml(probe, tmp_path):
    # The shipped file's keys, with values a default could not explain.
    tree = yaml.safe_load(SHIPPED.read_text())
    camera_key = next(k for k in tree if k.rstrip("/").endswith("camera"))
    tree[camera_key]["ros__parameters"].update(device="synthetic", width=320, frame_id="front_cam")
    config = tmp_path / "hilserl.yaml"
    config.write_text(yaml.safe_dump(tree))
    with NodeProcess("cam_guard.camera_node",
                     args=["--ros-args", "-r", "__node:=camera", "-r", "__ns:=/front", "--params-file", str(config)]) \
            as node:
        values = RemoteParameters(probe, "/front/camera").get("width", "frame_id", "device")
        node.stop()
    assert values == [320, "front_cam", "synthetic"]
