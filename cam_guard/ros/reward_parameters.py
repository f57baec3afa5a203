"""reward_node's parameters and the configuration built from them (checked without a node)."""

from dataclasses import dataclass
from typing import Any

from cam_guard.reward.backends import DEFAULT_CPU_THREADS, ClassifierError, ColorRuleClassifier, Preprocessing
from cam_guard.ros.image_input import TRANSPORT_HELP, TRANSPORTS
from cam_guard.ros.parameters import ConfigError, Param, ParameterTable

BACKENDS = ("color", "onnx", "lerobot")
_MODEL = "the model is loaded once, at start-up; restart the node to change it"


def parse_crops(entries: list[str]) -> list[tuple[int, int, int, int] | None]:
    """'top,left,height,width' per camera ('' = no crop), LeRobot's crop_params_dict order."""
    crops: list[tuple[int, int, int, int] | None] = []
    for entry in entries:
        if not entry.strip():
            crops.append(None)
            continue
        parts = entry.split(",")
        if len(parts) != 4 or not all(p.strip().isdigit() for p in parts):
            raise ConfigError(f"crop '{entry}' must be 'top,left,height,width' in pixels")
        top, left, height, width = (int(p) for p in parts)
        crops.append((top, left, height, width))
    return crops


def _check_resize(size: list[int]) -> None:
    if len(size) != 2 or min(size) < 8:
        raise ConfigError(f"resize_size {size} must be [height, width], each >= 8")


def _check_hsv(bound: list[int]) -> None:
    if len(bound) != 3 or not all(0 <= v <= 255 for v in bound):
        raise ConfigError(f"an HSV bound {bound} must be three values in [0, 255] (OpenCV's H is 0-179)")


PARAMETERS = ParameterTable([
    Param("image_topics", ["image_raw"], "camera image topics, in model order",
          fixed="subscriptions and model inputs are set up at start-up"),
    Param("transport", "raw", TRANSPORT_HELP, choices=TRANSPORTS, fixed="subscriptions are set up at start-up"),
    Param("backend", "color", "classifier backend", choices=BACKENDS, fixed=_MODEL),
    Param("model_path", "", "ONNX file or LeRobot checkpoint directory", fixed=_MODEL),
    Param("device", "cpu", "torch device for the lerobot backend", fixed=_MODEL),
    Param("cpu_threads", DEFAULT_CPU_THREADS, "CPU threads for the model (torch, ONNX Runtime)", int_range=(1, 64),
          fixed=_MODEL),
    Param("threshold", 0.5, "success when probability > threshold (LeRobot's rule)", float_range=(0.0, 1.0)),
    Param("max_skew", 0.0, "seconds the capture stamps of one set of frames may differ by; a wider set is skipped; "
          "0: auto, (N-1)/N of the cameras' frame period + 3 ms", float_range=(0.0, 1.0)),
    Param("resize_size", [128, 128], "model input height, width", fixed="it is the loaded model's input size",
          check=_check_resize),
    Param("crops", [""], "per camera 'top,left,height,width' or '' (onnx and lerobot backends)", check=parse_crops),
    Param("color.hsv_low", [25, 200, 200], "HSV lower bound (OpenCV scale)", check=_check_hsv),
    Param("color.hsv_high", [35, 255, 255], "HSV upper bound", check=_check_hsv),
    Param("color.roi", [0.5, 0.0, 0.5, 1.0], "x, y, width, height as fractions"),
    Param("color.full_share", 0.01, "pixel share that means probability 1", float_range=(1e-4, 1.0)),
])


@dataclass(frozen=True)
class RewardConfig:
    image_topics: list[str]
    transport: str
    backend: str
    model_path: str
    device: str
    cpu_threads: int
    threshold: float
    max_skew: float
    preprocessing: Preprocessing
    color_rule: ColorRuleClassifier


def build(values: dict[str, Any]) -> RewardConfig:
    topics = [t for t in values["image_topics"] if t]
    if not topics:
        raise ConfigError("image_topics is empty")
    roi = values["color.roi"]
    if len(roi) != 4:
        raise ConfigError(f"color.roi {roi} must be x, y, width, height")
    try:
        color_rule = ColorRuleClassifier(hsv_low=tuple(values["color.hsv_low"]),
                                         hsv_high=tuple(values["color.hsv_high"]),
                                         roi=tuple(roi), full_share=values["color.full_share"], cameras=len(topics))
    except ClassifierError as exc:
        raise ConfigError(f"color rule: {exc}") from None
    height, width = values["resize_size"]
    return RewardConfig(topics, values["transport"], values["backend"], values["model_path"], values["device"],
                        values["cpu_threads"], values["threshold"], values["max_skew"],
                        Preprocessing((height, width), parse_crops(values["crops"])), color_rule)
