"""A HIL-SERL cell: which cameras run, under which ROS names, and what each node is told about them.

`hilserl_graph --cameras front,wrist --devices /dev/video0,http://…` and
`ros2 launch cam_guard hilserl.launch.py cameras:=front,wrist devices:=…` both turn their arguments
into the same `NodeLaunch` list here, so the two mean exactly the same thing. No rclpy import:
the launch file loads this module too.

Names: camera `front` is a camera_node named `camera` in namespace `/front`, so its topics are
`/front/image_raw`, `/front/camera_state`, … and its parameters come from the YAML's `/**/camera`
block (every camera) and then its own `/front/camera` block. With no `--cameras`, the one camera
keeps the root namespace and today's names (`/image_raw`, `/camera_state`, frame id `camera`).
"""

import re
from dataclasses import dataclass, field
from typing import Any

CAMERA_NODE = "camera"
RESERVED_NAMES = (CAMERA_NODE, "reward", "preview")  # what `--set NODE.PARAM=…` already means
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")  # one ROS name token: namespaces, frame ids, labels


class CellError(ValueError):
    """A camera list or device list that cannot describe a cell; the message says why."""


@dataclass(frozen=True)
class CellCamera:
    name: str  # "" for the default camera in the root namespace
    device: str | None = None  # None: the YAML's `device`

    @property
    def namespace(self) -> str:
        return f"/{self.name}" if self.name else "/"

    def topic(self, relative: str) -> str:
        return f"{self.namespace.rstrip('/')}/{relative}"


@dataclass(frozen=True)
class NodeLaunch:
    """One node process of the cell: what both launchers start."""

    label: str  # how hilserl_graph names it in its log, and what `--set LABEL.PARAM=…` selects
    executable: str  # setup.py executable; the module is cam_guard.<executable>
    namespace: str
    parameters: dict[str, Any] = field(default_factory=dict)  # on top of the YAML, below user overrides

    @property
    def node_name(self) -> str:
        """camera, reward, preview: the YAML's `/**/<node_name>` block applies."""
        return self.executable.removesuffix("_node")

    @property
    def fqn(self) -> str:
        """The node's full name (/front/camera): what the YAML's keys are matched against."""
        return f"{self.namespace.rstrip('/')}/{self.node_name}"


def _split(text: str) -> list[str]:
    return [item.strip() for item in text.split(",")] if text.strip() else []


def parse_cell(cameras: str = "", devices: str = "") -> list[CellCamera]:
    """`front,wrist` and `/dev/video0,synthetic` -> the cell's cameras, in model order.

    No camera names: one default camera in the root namespace (today's topic names). Devices are
    optional; an empty entry keeps the YAML's device for that camera.
    """
    names = _split(cameras)
    device_list = [d or None for d in _split(devices)]
    if not names:
        if len(device_list) > 1:
            raise CellError(f"{len(device_list)} devices given for one camera: name the cameras too "
                            "(--cameras front,wrist / cameras:=front,wrist)")
        return [CellCamera("", device_list[0] if device_list else None)]
    for name in names:
        if not _NAME.match(name):
            raise CellError(f"camera name '{name}' must start with a letter and hold only letters, digits and _")
        if name in RESERVED_NAMES:
            raise CellError(f"camera name '{name}' is reserved ({', '.join(RESERVED_NAMES)}); pick another")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise CellError(f"camera name(s) {', '.join(duplicates)} given twice")
    if device_list and len(device_list) != len(names):
        raise CellError(f"{len(names)} cameras ({', '.join(names)}) but {len(device_list)} devices: "
                        "give one device per camera, in the same order")
    return [CellCamera(name, device_list[i] if device_list else None) for i, name in enumerate(names)]


def cell_nodes(cameras: list[CellCamera]) -> list[NodeLaunch]:
    """The cell's processes in start order: one camera_node per camera, then reward and preview
    with `image_topics` following the camera list (the reward model's input order)."""
    nodes = [NodeLaunch(camera.name or CAMERA_NODE, "camera_node", camera.namespace,
                        {} if camera.device is None else {"device": camera.device})
             for camera in cameras]
    # Named cameras set the topics; the default camera leaves them to the YAML, as before.
    topics = {"image_topics": [camera.topic("image_raw") for camera in cameras]} if cameras[0].name else {}
    nodes.append(NodeLaunch("reward", "reward_node", "/", dict(topics)))
    nodes.append(NodeLaunch("preview", "preview_node", "/", dict(topics)))
    return nodes


def state_topic_for(image_topic: str) -> str:
    """camera_node's `camera_state` beside its image topic: /front/image_raw -> /front/camera_state."""
    namespace, slash, _ = image_topic.rpartition("/")
    return f"{namespace}{slash}camera_state"


def camera_label(image_topic: str) -> str:
    """A short name for messages and preview tiles: /front/image_raw -> front, image_raw -> camera."""
    namespace = image_topic.rpartition("/")[0].strip("/")
    return namespace.replace("/", "_") or CAMERA_NODE


def default_frame_id(namespace: str) -> str:
    """`camera` in the root namespace (as before), `front_camera` in /front, `a_b_camera` in /a/b."""
    prefix = namespace.strip("/").replace("/", "_")
    return f"{prefix}_{CAMERA_NODE}" if prefix else CAMERA_NODE
