"""What a camera list means: namespaces, topics, parameters and the launcher's arguments (no ROS)."""

from pathlib import Path

import pytest

from cam_guard.ros.cell import (
    CellCamera,
    CellError,
    camera_label,
    cell_nodes,
    default_frame_id,
    parse_cell,
    state_topic_for,
)
from cam_guard.ros.parameters import ConfigError
from cam_guard.tools.graph_launcher import node_arguments, parse_overrides


def test_no_camera_list_is_one_camera_with_todays_names():
    assert parse_cell() == [CellCamera("", None)]
    assert parse_cell("", "/dev/video2") == [CellCamera("", "/dev/video2")]
    camera, reward, preview = cell_nodes(parse_cell())
    assert (camera.label, camera.node_name, camera.namespace, camera.parameters) == ("camera", "camera", "/", {})
    assert reward.parameters == {} and preview.parameters == {}, "the YAML's image_topics, as before"


def test_named_cameras_get_a_namespace_each_and_the_reward_reads_them_in_order():
    cameras = parse_cell("front, wrist", "/dev/video0,")
    assert cameras == [CellCamera("front", "/dev/video0"), CellCamera("wrist", None)]
    front, wrist, reward, preview = cell_nodes(cameras)
    assert [(n.label, n.executable, n.node_name, n.namespace) for n in (front, wrist)] == [
        ("front", "camera_node", "camera", "/front"), ("wrist", "camera_node", "camera", "/wrist")]
    assert front.parameters == {"device": "/dev/video0"} and wrist.parameters == {}, "empty entry: the YAML's"
    assert reward.parameters["image_topics"] == ["/front/image_raw", "/wrist/image_raw"]
    assert preview.parameters["image_topics"] == reward.parameters["image_topics"]
    assert (reward.namespace, preview.namespace) == ("/", "/")


@pytest.mark.parametrize(("cameras", "devices", "message"), [
    ("front,wrist", "/dev/video0", r"2 cameras \(front, wrist\) but 1 devices"),
    ("", "a,b", "name the cameras too"),
    ("front,front", "", "front given twice"),
    ("front,2nd", "", "'2nd' must start with a letter"),
    ("front,a/b", "", "'a/b' must start with a letter"),
    ("reward", "", "reserved"),
])
def test_a_list_that_cannot_describe_a_cell_is_refused_with_the_reason(cameras, devices, message):
    with pytest.raises(CellError, match=message):
        parse_cell(cameras, devices)


def test_names_derived_from_topics_and_namespaces():
    assert state_topic_for("/front/image_raw") == "/front/camera_state"
    assert state_topic_for("image_raw") == "camera_state"
    assert state_topic_for("/cell/wrist/image_raw") == "/cell/wrist/camera_state"
    assert [camera_label(t) for t in ("/front/image_raw", "image_raw", "/image_raw", "/a/b/image_raw")] == \
        ["front", "camera", "camera", "a_b"]
    assert [default_frame_id(ns) for ns in ("/", "", "/front", "/a/b")] == \
        ["camera", "camera", "front_camera", "a_b_camera"]


def test_launcher_arguments_layer_yaml_camera_list_every_camera_then_one_camera():
    nodes = cell_nodes(parse_cell("front,wrist", "0,synthetic"))
    overrides = parse_overrides(["camera.fps=15", "wrist.fps=10", "reward.threshold=0.7"], nodes)
    front, wrist, reward, _ = (node_arguments(n, Path("/c.yaml"), overrides) for n in nodes)
    assert front == ["--ros-args", "-r", "__node:=camera", "-r", "__ns:=/front", "--params-file", "/c.yaml",
                     "-p", "device:='0'", "-p", "fps:=15.0"]  # typed as the node declares them
    assert wrist[-4:] == ["-p", "device:=synthetic", "-p", "fps:=10.0"], "the last one wins"
    assert reward[-4:] == ["-p", "image_topics:=[/front/image_raw, /wrist/image_raw]", "-p", "threshold:=0.7"]
    with pytest.raises(ConfigError, match="NODE in camera, front, wrist, reward, preview"):
        parse_overrides(["side.fps=15"], nodes)
