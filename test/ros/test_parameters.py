"""The parameter mechanism: the same rules at start-up, on a live change, and before a launch."""

import pytest
import rclpy
from rclpy.parameter import Parameter

from cam_guard.ros import reward_parameters
from cam_guard.ros.parameters import ConfigError, LiveParameters, Param, ParameterTable, as_text, ros_type_name


def test_values_are_checked_like_rclpy_checks_them():
    width = Param("width", 640, "", int_range=(16, 7680))
    assert width.validate(320) == 320
    with pytest.raises(ConfigError, match="'width' is out of range"):
        width.validate(5)
    with pytest.raises(ConfigError, match="'width' must be of type integer, not double"):
        width.validate(320.0)  # rclpy never turns a double into an integer parameter
    with pytest.raises(ConfigError, match="not string"):
        width.validate("wide")
    fps = Param("fps", 30.0, "", float_range=(1.0, 240.0))
    with pytest.raises(ConfigError, match="not integer"):
        fps.validate(30)
    with pytest.raises(ConfigError, match="out of range"):
        fps.validate(float("nan"))
    assert ros_type_name([1, 2]) == "integer array"
    with pytest.raises(ConfigError, match="one type"):
        ros_type_name([1, "a"])


def test_choices_checks_and_dynamic_typing():
    encoding = Param("encoding", "bgr8", "", choices=("bgr8", "rgb8"))
    with pytest.raises(ConfigError, match="'encoding' = 'yuv' is not one of: bgr8, rgb8"):
        encoding.validate("yuv")
    device = Param("device", "auto", "", dynamic_typing=True)
    assert device.validate(0) == "0"  # `device:=0` arrives as an integer
    crops = Param("crops", [""], "", check=reward_parameters.parse_crops)
    with pytest.raises(ConfigError, match="top,left,height,width"):
        crops.validate(["1,2,3"])


def test_text_from_a_launch_argument_or_command_line():
    threshold = reward_parameters.PARAMETERS.params["threshold"]
    assert threshold.from_text("0.7") == 0.7
    assert threshold.from_text("1") == 1.0  # `threshold:=1` means 1.0, not an integer
    with pytest.raises(ConfigError, match="'threshold' must be of type double, not string"):
        threshold.from_text("abc")
    with pytest.raises(ConfigError, match="out of range"):
        threshold.from_text("2.0")
    roi = reward_parameters.PARAMETERS.params["color.roi"]
    assert roi.from_text("[0, 0, 1, 1]") == [0.0, 0.0, 1.0, 1.0]
    assert Param("frame_id", "camera", "").from_text("123") == "123"
    assert as_text("123") == "'123'" and as_text(0.5) == "0.5" and as_text([1, 2]) == "[1, 2]"
    assert as_text("/dev/video0") == "/dev/video0" and as_text(True) == "true"


def test_descriptor_says_why_a_parameter_is_fixed():
    descriptor = reward_parameters.PARAMETERS.params["backend"].descriptor()
    assert descriptor.read_only and "fixed while running: the model is loaded once" in descriptor.description
    assert descriptor.additional_constraints == "one of: color, onnx, lerobot"
    live = reward_parameters.PARAMETERS.params["threshold"].descriptor()
    assert not live.read_only and live.floating_point_range[0].to_value == 1.0


def test_table_merges_defaults_and_ignores_names_it_does_not_declare():
    values = reward_parameters.PARAMETERS.validate({"threshold": 0.8, "use_sim_time": False})
    assert values["threshold"] == 0.8 and values["backend"] == "color" and "use_sim_time" not in values
    with pytest.raises(ConfigError, match="image_topics is empty"):
        reward_parameters.build({**values, "image_topics": [""]})
    with pytest.raises(ConfigError, match="color rule: roi"):
        reward_parameters.build({**values, "color.roi": [0.9, 0.0, 0.5, 1.0]})


class Applied:
    def __init__(self) -> None:
        self.calls: list[tuple[dict, frozenset[str]]] = []

    def __call__(self, config: dict, changed: frozenset[str]) -> None:
        self.calls.append((config, changed))


def build_pair(values: dict) -> dict:
    if values["low"] > values["high"]:
        raise ConfigError(f"low {values['low']} must not exceed high {values['high']}")
    return dict(values)


TABLE = ParameterTable([
    Param("low", 1, "", int_range=(0, 10)),
    Param("high", 5, "", int_range=(0, 10)),
    Param("mode", "a", "", choices=("a", "b"), fixed="chosen at start-up"),
])


def test_live_change_is_validated_then_applied_and_a_rejection_changes_nothing(ros):
    node = rclpy.create_node("live_parameters_under_test", parameter_overrides=[Parameter("high", value=7)])
    try:
        applied = Applied()
        params = LiveParameters(node, TABLE, build_pair, applied)
        assert params.config == {"low": 1, "high": 7, "mode": "a"}

        [ok] = node.set_parameters([Parameter("low", value=3)])
        assert ok.successful and params.config["low"] == 3 and applied.calls == [(params.config, {"low"})]

        [crossed] = node.set_parameters([Parameter("low", value=9)])  # build() rejects the combination
        assert not crossed.successful and crossed.reason == "low 9 must not exceed high 7"
        [out] = node.set_parameters([Parameter("high", value=11)])  # rclpy's range check
        assert not out.successful and "out of range" in out.reason
        [fixed] = node.set_parameters([Parameter("mode", value="b")])
        assert not fixed.successful and "read-only" in fixed.reason
        assert node.get_parameter("low").value == 3 and params.config["low"] == 3 and len(applied.calls) == 1
    finally:
        node.destroy_node()


def test_a_bad_start_up_value_is_one_config_error(ros):
    node = rclpy.create_node("bad_start_under_test", parameter_overrides=[Parameter("high", value=12)])
    try:
        with pytest.raises(ConfigError, match=r"^parameter 'high' is out of range \[0, 10\]$"):
            LiveParameters(node, TABLE, build_pair, Applied())
    finally:
        node.destroy_node()
