"""HIL-SERL camera graph: `ros2 launch cam_guard hilserl.launch.py device:=/dev/video0`.

Each node runs in its own process (launch_ros execs it; nothing forks a threaded interpreter).
Parameters come from config/hilserl.yaml; the arguments below override the common ones. The
nodes apply cam_guard's Fast DDS shared-memory profile themselves (see README, Transport).
"""

from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, NotSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue


def generate_launch_description() -> LaunchDescription:
    default_config = str(Path(get_package_share_directory("cam_guard")) / "config" / "hilserl.yaml")
    config = LaunchConfiguration("config")

    def text(name: str) -> ParameterValue:  # keeps `device:=0` and an empty model a string
        return ParameterValue(LaunchConfiguration(name), value_type=str)

    threshold = ParameterValue(LaunchConfiguration("threshold"), value_type=float)
    return LaunchDescription([
        DeclareLaunchArgument("config", default_value=default_config, description="parameter YAML"),
        DeclareLaunchArgument("device", default_value="auto", description="camera device, URL or file"),
        DeclareLaunchArgument("backend", default_value="color", description="color, onnx or lerobot"),
        DeclareLaunchArgument("model", default_value="", description="ONNX file or LeRobot checkpoint dir"),
        DeclareLaunchArgument("threshold", default_value="0.5", description="success threshold"),
        DeclareLaunchArgument("headless", default_value="true", description="false: also a preview window"),
        Node(
            package="cam_guard", executable="camera_node", name="camera", output="screen",
            parameters=[config, {"device": text("device")}],
            respawn=True, respawn_delay=1.0,  # exits non-zero only when recovery gave up or crashed
        ),
        Node(
            package="cam_guard", executable="reward_node", name="reward", output="screen",
            parameters=[config, {"backend": text("backend"), "model_path": text("model"), "threshold": threshold}],
            respawn=True, respawn_delay=1.0,
        ),
        Node(
            package="cam_guard", executable="preview_node", name="preview", output="screen",
            parameters=[config, {"threshold": threshold,
                                 "show_window": ParameterValue(NotSubstitution(LaunchConfiguration("headless")),
                                                               value_type=bool)}],
            respawn=True, respawn_delay=1.0,
        ),
    ])
