"""preview_node's parameters (checked without a node). The threshold it draws is the reward node's,
read from each reward/stamped message: one threshold, set where it is used."""

from dataclasses import dataclass
from typing import Any

from cam_guard.ros.image_input import TRANSPORT_HELP, TRANSPORTS
from cam_guard.ros.parameters import ConfigError, Param, ParameterTable

_SUBSCRIBED = "subscriptions are made at start-up"

PARAMETERS = ParameterTable([
    Param("image_topics", ["image_raw"], "camera images, one tile each (each camera's state is read from "
          "camera_state beside it)", fixed=_SUBSCRIBED),
    Param("transport", "raw", TRANSPORT_HELP, choices=TRANSPORTS, fixed=_SUBSCRIBED),
    Param("reward_topic", "reward/stamped", "reward_node's stamped output (its threshold is the one drawn)",
          fixed=_SUBSCRIBED),
    Param("stale_after", 1.0, "seconds without a frame before NO SIGNAL", float_range=(0.05, 60.0)),
    Param("max_rate", 30.0, "most overlays drawn per second (on average)", float_range=(0.5, 240.0)),
    Param("show_window", False, "also show an OpenCV window (needs a display)"),
    Param("web_port", 0, "serve the preview to browsers on this port (0: off)", int_range=(0, 65535),
          fixed="the web server listens from start-up"),
    Param("web_host", "127.0.0.1", "address the web view listens on (0.0.0.0: every network)",
          fixed="the web server listens from start-up"),
])


@dataclass(frozen=True)
class PreviewConfig:
    image_topics: list[str]
    transport: str
    reward_topic: str
    stale_after: float
    max_rate: float
    show_window: bool
    web_port: int
    web_host: str


def build(values: dict[str, Any]) -> PreviewConfig:
    topics = [t for t in values["image_topics"] if t]
    if not topics:
        raise ConfigError("image_topics is empty")
    return PreviewConfig(**{**values, "image_topics": topics})
