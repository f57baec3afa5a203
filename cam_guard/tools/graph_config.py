"""What both launchers (`hilserl_graph`, `launch/hilserl.launch.py`) check before any node starts,
and whether a node that exited is started again. Plain Python (no launch, no node): the launch
file imports it too.

A node would reject its parameters with exit code 2 after its siblings had started (a camera
then holds the device with nobody to stop it); so every node's parameters, from the YAML files as
rcl applies them (`/**/camera` wildcards included) and from the arguments, are run through that
node's own parameter table and `build` first. The launcher starts nothing if any is rejected.
"""

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from cam_guard.ros import camera_parameters, control_parameters, preview_parameters, reward_parameters
from cam_guard.ros.parameters import ConfigError, Param, ParameterTable

EXIT_BAD_CONFIG = 2  # a node rejected its parameters: starting it again cannot help
RESPAWN_DELAY_S = 1.0

# Executable -> its parameter tables, each with the function that builds (and so checks) that part.
NODE_PARAMETERS: dict[str, list[tuple[ParameterTable, Callable[[dict[str, Any]], Any]]]] = {
    "camera_node": [(camera_parameters.PARAMETERS, camera_parameters.build),
                    # The camera's control ranges are known once it is open: checked against none here.
                    (control_parameters.PARAMETERS, lambda values: control_parameters.build(values, {}))],
    "reward_node": [(reward_parameters.PARAMETERS, reward_parameters.build)],
    "preview_node": [(preview_parameters.PARAMETERS, preview_parameters.build)],
}


def node_parameter(executable: str, name: str) -> Param | None:
    """The declaration of parameter `name` of `executable`, if it has one."""
    return next((table.params[name] for table, _ in NODE_PARAMETERS[executable] if name in table.params), None)


def parameter_names(executable: str) -> list[str]:
    return [name for table, _ in NODE_PARAMETERS[executable] for name in table.params]


def respawn_delay(returncode: int | None, shutting_down: bool) -> float | None:
    """Seconds before a node that exited with `returncode` is started again; None: not at all.

    Not after a clean exit (0), nor after a configuration error (2: the same error would come back,
    every second, forever), nor while the launch itself is shutting down. launch_ros's own
    `respawn=True` cannot tell these apart, so the launch file asks this instead.
    """
    if shutting_down or returncode in (0, EXIT_BAD_CONFIG):
        return None
    return RESPAWN_DELAY_S


def _node_blocks(tree: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(node name pattern, its ros__parameters) in file order, namespaces nested or not."""
    for key, value in tree.items():
        if not isinstance(value, Mapping):
            continue
        name = f"{prefix}/{str(key).strip('/')}"
        if "ros__parameters" in value:
            yield name, value["ros__parameters"] or {}
        else:
            yield from _node_blocks(value, name)


def _pattern(name: str) -> re.Pattern[str]:
    """rcl's node name wildcards: `*` one name token, `**` any number of them."""
    tokens = [t for t in name.split("/") if t]
    regex = "".join("(?:/[^/]+)*" if t == "**" else "/[^/]+" if t == "*" else "/" + re.escape(t) for t in tokens)
    return re.compile(f"^{regex}$")


def _flatten(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def read_parameter_file(path: Path) -> Mapping[str, Any]:
    try:
        tree = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read parameter file '{path}': {' '.join(str(exc).split())}") from None
    if not isinstance(tree, Mapping):
        raise ConfigError(f"parameter file '{path}' is not a mapping of node names")
    return tree


def parameters_in_file(tree: Mapping[str, Any], node_fqn: str) -> dict[str, Any]:
    """What a parameter file gives the node `node_fqn` (`/front/camera`): every block whose name
    matches, later blocks winning, nested parameter groups as `color.hsv_low`."""
    values: dict[str, Any] = {}
    for name, params in _node_blocks(tree):
        if _pattern(name).match(node_fqn):
            values.update(_flatten(params))
    return values


@dataclass(frozen=True)
class PlannedNode:
    executable: str  # camera_node, reward_node, preview_node
    node_fqn: str  # /camera, /front/camera
    overrides: Mapping[str, Any]  # typed values on top of the parameter files


def check_graph(parameter_files: Sequence[Path], nodes: Sequence[PlannedNode]) -> None:
    """ConfigError ('<node>: <reason>', the node's own words) for the first node that would reject
    its parameters; nothing at all is started by this."""
    trees = [read_parameter_file(path) for path in parameter_files]
    for node in nodes:
        values: dict[str, Any] = {}
        for tree in trees:
            values.update(parameters_in_file(tree, node.node_fqn))
        values.update(node.overrides)
        try:
            for table, build in NODE_PARAMETERS[node.executable]:
                build(table.validate(values))
        except ConfigError as exc:
            raise ConfigError(f"{node.node_fqn}: {exc}") from None


@dataclass(frozen=True)
class LaunchArgument:
    name: str
    default: str
    description: str
    executables: tuple[str, ...] = ()  # the nodes whose parameter it sets (none: one of the launch file's own)
    parameter: str = ""
    negate: bool = False  # a bool argument meaning the parameter's opposite (headless -> show_window)


# '' keeps what the YAML says: the launch file's defaults never silently override the YAML.
LAUNCH_ARGUMENTS = (
    LaunchArgument("config", "", "parameter YAML ('' = the package's config/hilserl.yaml)"),
    LaunchArgument("cameras", "", "camera names, e.g. front,wrist: one camera_node each in /<name>, in the reward "
                   "model's input order ('' = one camera, root namespace)"),
    LaunchArgument("devices", "", "the cameras' devices, same order ('' = the YAML's)"),
    LaunchArgument("device", "", "the device of a single camera ('' = the YAML's)"),
    LaunchArgument("backend", "", "classifier: color, onnx or lerobot ('' = the YAML's)", ("reward_node",), "backend"),
    LaunchArgument("model", "", "ONNX file or LeRobot checkpoint directory ('' = the YAML's)", ("reward_node",),
                   "model_path"),
    LaunchArgument("threshold", "", "success threshold in [0, 1] ('' = the YAML's)", ("reward_node",), "threshold"),
    LaunchArgument("headless", "true", "false: also show the preview in a window", ("preview_node",), "show_window",
                   negate=True),
    LaunchArgument("web_port", "", "the preview in a browser on this port ('' = the YAML's, 0: off)",
                   ("preview_node",), "web_port"),
    LaunchArgument("web_host", "", "the address the web view listens on ('' = the YAML's; 0.0.0.0: every "
                   "network)", ("preview_node",), "web_host"),
    LaunchArgument("transport", "", "what reward and preview read: raw, or compressed (the camera's JPEG, across "
                   "machines) ('' = the YAML's)", ("reward_node", "preview_node"), "transport"),
)


def launch_overrides(arguments: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """Launch arguments (text) as typed parameter values per executable; ConfigError naming the
    argument for text its parameter would reject (`threshold:=abc`)."""
    overrides: dict[str, dict[str, Any]] = {}
    for argument in LAUNCH_ARGUMENTS:
        text = arguments.get(argument.name, argument.default)
        if text == "":
            continue
        for executable in argument.executables:
            param = node_parameter(executable, argument.parameter)
            assert param is not None, argument
            try:
                value = param.from_text(text)
            except ConfigError as exc:
                raise ConfigError(f"launch argument {argument.name}:={text}: {exc}") from None
            overrides.setdefault(executable, {})[argument.parameter] = not value if argument.negate else value
    return overrides
