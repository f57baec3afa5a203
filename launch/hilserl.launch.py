"""HIL-SERL camera graph: `ros2 launch cam_guard hilserl.launch.py cameras:=front,wrist devices:=/dev/video0,…`.

Each node runs in its own process (launch_ros execs it; nothing forks a threaded interpreter): one
camera_node per camera in namespace /<name>, then reward_node and preview_node reading the cameras
in the listed order. Without `cameras` one camera keeps the root namespace's topics. The camera
list means exactly what `hilserl_graph --cameras … --devices …` means (cam_guard.ros.cell).
Parameters come from config/hilserl.yaml; the arguments below override it (an empty argument keeps
the YAML's value). The nodes apply cam_guard's Fast DDS shared-memory profile themselves.

What both launchers share lives in cam_guard.tools.graph_config:
- the arguments and the YAML are checked with each node's own parameter rules before any node
  starts: `threshold:=abc` is one error line and nothing runs (no camera left holding the device);
- a node that exits cleanly (0) or with a configuration error (2) is not started again; one that
  crashed or gave up on its camera is, after a second (launch_ros's `respawn` cannot tell them apart);
- the nodes die with the launch process even when it is killed (cam_guard.common.startup).
"""

from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from launch import LaunchContext, LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction, RegisterEventHandler, TimerAction
from launch.event_handlers import OnProcessExit
from launch.events.process import ProcessExited
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from cam_guard.ros.cell import NodeLaunch, cell_nodes, parse_cell
from cam_guard.tools.graph_config import LAUNCH_ARGUMENTS, PlannedNode, check_graph, launch_overrides, respawn_delay


def cell(context: LaunchContext) -> list:
    """Check everything, then start the cell; a ConfigError or CellError ends the launch with its one line."""
    arguments = {a.name: LaunchConfiguration(a.name).perform(context) for a in LAUNCH_ARGUMENTS}
    config = arguments["config"] or str(Path(get_package_share_directory("cam_guard")) / "config" / "hilserl.yaml")
    per_executable = launch_overrides(arguments)
    # `device:=` is the one-camera spelling of `devices:=`.
    nodes = cell_nodes(parse_cell(arguments["cameras"], arguments["devices"] or arguments["device"]))
    overrides = [{**node.parameters, **per_executable.get(node.executable, {})} for node in nodes]
    check_graph([Path(config)], [PlannedNode(node.executable, node.fqn, values)
                                 for node, values in zip(nodes, overrides, strict=True)])
    return [entity for node, values in zip(nodes, overrides, strict=True)
            for entity in respawning_node(node, config, values)]


def respawning_node(node: NodeLaunch, config: str, overrides: dict) -> list:
    """The node, and what to do when it exits (graph_config.respawn_delay decides)."""
    action = Node(package="cam_guard", executable=node.executable, name=node.node_name, namespace=node.namespace,
                  output="screen", parameters=[config, overrides])  # checked values, already typed

    def on_exit(event: ProcessExited, context: LaunchContext) -> list | None:
        delay = respawn_delay(event.returncode, context.is_shutdown)
        if delay is None:
            return None
        return [TimerAction(period=delay, actions=respawning_node(node, config, overrides))]

    return [action, RegisterEventHandler(OnProcessExit(target_action=action, on_exit=on_exit))]


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription([
        *(DeclareLaunchArgument(a.name, default_value=a.default, description=a.description) for a in LAUNCH_ARGUMENTS),
        OpaqueFunction(function=cell),
    ])
