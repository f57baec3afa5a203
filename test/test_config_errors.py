"""A configuration error is one line, exit code 2, and reaches ROS logging (/rosout, log files) too."""

from pathlib import Path

import pytest
from helpers import NodeProcess, assert_config_error
from rcl_interfaces.msg import Log
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy


def rosout_qos() -> QoSProfile:
    # What rqt_console asks for: late joiners get recent lines while the writer lives.
    return QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)


def test_a_config_error_reaches_rosout_and_the_log_file(probe, tmp_path):
    rosout = probe.subscribe(Log, "/rosout", rosout_qos())
    expected = "parameter 'threshold' is out of range [0.0, 1.0]"
    with NodeProcess("cam_guard.reward_node", {"threshold": 1.5}, env={"ROS_LOG_DIR": str(tmp_path)}) as node:
        line = assert_config_error(node, expected)
    assert line.startswith("[ERROR]") and line.endswith(f"[reward]: {expected}")
    rosout.wait_for(lambda ms: any(m.name == "reward" and m.level == Log.ERROR and m.msg == expected for m in ms),
                    5, "the error on /rosout")
    logged = "".join(p.read_text() for p in Path(tmp_path).glob("*.log"))
    assert expected in logged, f"log files in {tmp_path}: {list(Path(tmp_path).iterdir())}"


@pytest.mark.parametrize(("yaml_text", "message"), [
    ("reward:\n  ros__parameters:\n    threshold: [0.5,\n", "cannot read parameter file"),
    ("reward:\n  ros__parameters:\n    threshold: high\n", "'threshold'"),
    ("reward:\n  ros__parameters:\n    threshold: 1\n", "'threshold'"),  # an integer is not a double in ROS
])
def test_a_bad_parameter_file_is_one_line_and_exit_2(ros, tmp_path, yaml_text, message):
    params = tmp_path / "params.yaml"
    params.write_text(yaml_text)
    with NodeProcess("cam_guard.reward_node", args=["--ros-args", "--params-file", str(params)]) as node:
        assert_config_error(node, message)
