"""HIL-SERL camera graph: `ros2 launch cam_guard hilserl.launch.py device:=/dev/video0`.

Each node runs in its own process (launch_ros execs it; nothing forks a threaded interpreter).
Parameters come from config/hilserl.yaml; the arguments below override the common ones.
"""

from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchDescription


def generate_launch_description() -> LaunchDescription:
    default_config = str(Path(get_package_share_directory("cam_guard")) / "config" / "hilserl.yaml")
    config = LaunchConfiguration("config")
    return LaunchDescription([
        DeclareLaunchArgument("config", default_value=default_config, description="parameter YAML"),
        DeclareLaunchArgument("device", default_value="auto", description="camera device, URL or file"),
        Node(
            package="cam_guard", executable="camera_node", name="camera", output="screen",
            parameters=[config, {"device": LaunchConfiguration("device")}],
            respawn=True, respawn_delay=1.0,  # exits non-zero only when recovery gave up
        ),
    ])
