"""HIL-SERL camera graph: `ros2 launch cam_guard hilserl.launch.py cameras:=front,wrist devices:=/dev/video0,…`.

Each node runs in its own process (launch_ros execs it; nothing forks a threaded interpreter): one
camera_node per camera in namespace /<name>, then reward_node and preview_node reading the cameras
in the listed order. Without `cameras` one camera keeps the root namespace's topics. The camera
list means exactly what `hilserl_graph --cameras … --devices …` means (cam_guard.ros.cell).
Parameters come from config/hilserl.yaml; the arguments below override the common ones. The
nodes apply cam_guard's Fast DDS shared-memory profile themselves (see README, Transport).
"""

from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from launch import LaunchContext, LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration, NotSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue

from cam_guard.ros.cell import cell_nodes, parse_cell


def cell(context: LaunchContext) -> list[Node]:
    def arg(name: str) -> str:
        return LaunchConfiguration(name).perform(context)

    threshold = ParameterValue(LaunchConfiguration("threshold"), value_type=float)
    transport = ParameterValue(LaunchConfiguration("transport"), value_type=str)
    per_node = {  # launch arguments that override the YAML, on top of what the camera list sets
        "reward_node": {"backend": ParameterValue(LaunchConfiguration("backend"), value_type=str),
                        "model_path": ParameterValue(LaunchConfiguration("model"), value_type=str),
                        "threshold": threshold, "transport": transport},
        "preview_node": {"threshold": threshold, "transport": transport,
                         "web_port": ParameterValue(LaunchConfiguration("web_port"), value_type=int),
                         "show_window": ParameterValue(NotSubstitution(LaunchConfiguration("headless")),
                                                       value_type=bool)},
    }
    # `device:=` is the one-camera spelling of `devices:=`.
    nodes = cell_nodes(parse_cell(arg("cameras"), arg("devices") or arg("device")))
    return [
        Node(package="cam_guard", executable=node.executable, name=node.node_name, namespace=node.namespace,
             output="screen",
             # keeps `device:=0` a string; lists of topic names pass as they are
             parameters=[LaunchConfiguration("config"),
                         {k: ParameterValue(v, value_type=str) if isinstance(v, str) else v
                          for k, v in node.parameters.items()},
                         per_node.get(node.executable, {})],
             respawn=True, respawn_delay=1.0)  # a camera exits non-zero only when recovery gave up or crashed
        for node in nodes
    ]


def generate_launch_description() -> LaunchDescription:
    default_config = str(Path(get_package_share_directory("cam_guard")) / "config" / "hilserl.yaml")
    return LaunchDescription([
        DeclareLaunchArgument("config", default_value=default_config, description="parameter YAML"),
        DeclareLaunchArgument("cameras", default_value="",
                              description="camera names, e.g. front,wrist: one camera_node each in /<name>, "
                                          "in the reward model's input order (default: one camera, root namespace)"),
        DeclareLaunchArgument("devices", default_value="",
                              description="the cameras' devices, same order (default: the YAML's device)"),
        DeclareLaunchArgument("device", default_value="", description="the device of a single camera"),
        DeclareLaunchArgument("backend", default_value="color", description="color, onnx or lerobot"),
        DeclareLaunchArgument("model", default_value="", description="ONNX file or LeRobot checkpoint dir"),
        DeclareLaunchArgument("threshold", default_value="0.5", description="success threshold"),
        DeclareLaunchArgument("headless", default_value="true", description="false: also a preview window"),
        DeclareLaunchArgument("web_port", default_value="0", description="preview in a browser on this port (0: off)"),
        DeclareLaunchArgument("transport", default_value="raw",
                              description="what reward and preview read: raw, or compressed (across machines)"),
        OpaqueFunction(function=cell),
    ])
