"""Success classifiers behind one small interface: images in, probability out. No ROS here.

Backends:
- `color`: a dependency-free rule (share of pixels in an HSV range inside a region), for demos
  and tests: the synthetic camera's yellow block scores high while it crosses the region.
- `onnx`: any ONNX model taking one N×3×H×W float input per camera, giving one logit or probability.
- `lerobot`: a LeRobot reward-classifier checkpoint (`Classifier.from_pretrained`).

Every backend takes RGB uint8 images, one per camera, and preprocesses them as LeRobot's
reward-classifier pipeline expects: crop per camera, resize, scale to [0, 1], ImageNet normalisation.
"""

import importlib.metadata
import importlib.util
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)
# torch and ONNX Runtime default to a thread per core, and their idle threads spin: on a 16-core machine a
# resnet10 prediction cost 86 ms of CPU on all cores against 12 ms on two, for 7% more latency
# (bench/RESULTS.md, "Reward classifier on the GPU"). The cores belong to the cameras.
DEFAULT_CPU_THREADS = 2


class ClassifierError(ValueError):
    """A model that cannot be loaded or used; the message says what to do."""


LEROBOT_PIP = "'lerobot[transformers-dep]==0.4.4'"  # the LeRobot release cam_guard is tested with
_PIP_FOR = {"lerobot": LEROBOT_PIP, "torch": LEROBOT_PIP, "transformers": "'transformers>=4.57.1,<5'"}
_BUILT_FOR_TORCH = ("torchvision", "torchaudio", "torchcodec")


def _importing_package(exc: BaseException) -> str | None:
    """Top-level package of the innermost module whose import was under way when `exc` was raised."""
    name = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_name == "<module>":
            name = tb.tb_frame.f_globals.get("__name__", name)
        tb = tb.tb_next
    return None if name is None else name.split(".")[0]


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def broken_import(backend: str, exc: Exception) -> ClassifierError:
    """One line naming the package that made the backend's imports fail, and what to do about it."""
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        missing = exc.name.split(".")[0]
        if missing == exc.name or importlib.util.find_spec(missing) is None:
            return ClassifierError(f"the {backend} backend needs the '{missing}' package, which is not installed; "
                                   f"install it with: pip install {_PIP_FOR.get(missing, missing)}")
        return ClassifierError(f"the {backend} backend needs {exc.name}, which {missing} {_version(missing)} lacks; "
                               f"install it with: pip install {_PIP_FOR.get(missing, missing)}")
    package = _importing_package(exc) or "?"
    message = f"the {backend} backend cannot import {package} {_version(package)}: " + " ".join(
        f"{type(exc).__name__}: {exc}".split())
    if package in _BUILT_FOR_TORCH:
        message += f"; {package} must be the build for the installed torch {_version('torch')} (install them as a pair)"
    return ClassifierError(message)


@dataclass(frozen=True)
class Preprocessing:
    """Crop (top, left, height, width) per camera, then resize to (height, width)."""

    resize: tuple[int, int] = (128, 128)
    crops: Sequence[tuple[int, int, int, int] | None] = field(default_factory=tuple)

    def crop_and_resize(self, image: np.ndarray, camera: int) -> np.ndarray:
        crop = self.crops[camera] if camera < len(self.crops) else None
        if crop is not None:
            top, left, height, width = crop
            if top + height > image.shape[0] or left + width > image.shape[1]:
                raise ClassifierError(f"crop {crop} for camera {camera} exceeds its {image.shape[1]}x"
                                      f"{image.shape[0]} image")
            image = image[top:top + height, left:left + width]
        if image.shape[:2] != self.resize:
            image = cv2.resize(image, (self.resize[1], self.resize[0]), interpolation=cv2.INTER_AREA)
        return image

    def decode_size(self, camera: int) -> tuple[int, int] | None:
        """The least (height, width) a camera's frame must have: the model input, or None (full size) when
        the camera has a crop, whose pixel coordinates are the camera's own."""
        crop = self.crops[camera] if camera < len(self.crops) else None
        return None if crop is not None else self.resize

    def to_tensor(self, image: np.ndarray, camera: int) -> np.ndarray:
        """RGB uint8 H×W×3 -> normalised float32 1×3×h×w."""
        rgb = self.crop_and_resize(image, camera).astype(np.float32) / 255.0
        return ((rgb - IMAGENET_MEAN) / IMAGENET_STD).transpose(2, 0, 1)[np.newaxis]


class RewardClassifier(Protocol):
    cameras: int

    def predict(self, images: Sequence[np.ndarray]) -> float:
        """Success probability in [0, 1] for one RGB image per camera."""
        ...


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


@dataclass
class ColorRuleClassifier:
    """Probability = share of ROI pixels within [hsv_low, hsv_high], relative to `full_share`.

    With several cameras the same rule runs on each and the lowest probability counts: success
    needs the colour in the region of every camera (one camera can veto, as a false success is the
    costlier mistake for a reward).
    """

    hsv_low: tuple[int, int, int] = (25, 200, 200)
    hsv_high: tuple[int, int, int] = (35, 255, 255)
    roi: tuple[float, float, float, float] = (0.5, 0.0, 0.5, 1.0)  # x, y, width, height (fractions)
    full_share: float = 0.01
    cameras: int = 1

    def __post_init__(self) -> None:
        x, y, w, h = self.roi
        if not (0 <= x < 1 and 0 <= y < 1 and 0 < w <= 1 - x + 1e-9 and 0 < h <= 1 - y + 1e-9):
            raise ClassifierError(f"roi {self.roi} must be x, y, width, height fractions inside the image")
        if not 0 < self.full_share <= 1:
            raise ClassifierError("full_share must be in (0, 1]")

    def predict(self, images: Sequence[np.ndarray]) -> float:
        if len(images) != self.cameras:
            raise ClassifierError(f"the colour rule was set up for {self.cameras} camera(s), got {len(images)}")
        return min(self._probability(image) for image in images)

    def _probability(self, image: np.ndarray) -> float:
        height, width = image.shape[:2]
        x, y, w, h = self.roi
        region = image[int(y * height):int((y + h) * height), int(x * width):int((x + w) * width)]
        hsv = cv2.cvtColor(region, cv2.COLOR_RGB2HSV)
        share = float(np.count_nonzero(cv2.inRange(hsv, self.hsv_low, self.hsv_high))) / max(1, region.shape[0]
                                                                                              * region.shape[1])
        return min(1.0, share / self.full_share)


class OnnxClassifier:
    def __init__(self, path: str, preprocessing: Preprocessing, output_is_logit: bool = True,
                 cpu_threads: int = DEFAULT_CPU_THREADS) -> None:
        try:
            import onnxruntime
        except Exception as exc:
            raise broken_import("onnx", exc) from None
        if not Path(path).is_file():
            raise ClassifierError(f"ONNX model '{path}' does not exist")
        try:
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = cpu_threads
            options.inter_op_num_threads = 1
            self._session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types for corrupt files
            raise ClassifierError(f"cannot load ONNX model '{path}': {str(exc).splitlines()[0]}") from None
        self._inputs = self._session.get_inputs()
        self.cameras = len(self._inputs)
        self.preprocessing = preprocessing  # replaced live when crops change
        self._logit = output_is_logit
        for model_input in self._inputs:
            shape = model_input.shape
            if len(shape) != 4 or shape[1] != 3 or tuple(shape[2:]) != preprocessing.resize:
                raise ClassifierError(
                    f"ONNX input '{model_input.name}' has shape {shape}; expected [N, 3, "
                    f"{preprocessing.resize[0]}, {preprocessing.resize[1]}] (set resize_size to match the model)")

    def predict(self, images: Sequence[np.ndarray]) -> float:
        feeds = {inp.name: self.preprocessing.to_tensor(img, i)
                 for i, (inp, img) in enumerate(zip(self._inputs, images, strict=True))}
        value = float(np.asarray(self._session.run(None, feeds)[0]).reshape(-1)[0])
        return sigmoid(value) if self._logit else min(1.0, max(0.0, value))


class LeRobotClassifier:
    """LeRobot's reward classifier (lerobot.policies.sac.reward_model), run on the CPU or GPU."""

    def __init__(self, path: str, preprocessing: Preprocessing, device: str = "cpu",
                 cpu_threads: int = DEFAULT_CPU_THREADS) -> None:
        try:
            import torch
            from lerobot.policies.sac.reward_model.modeling_classifier import Classifier
        except Exception as exc:  # a broken stack raises anything: RuntimeError for a torchvision/torch mismatch
            raise broken_import("lerobot", exc) from None
        if not Path(path).is_dir():
            raise ClassifierError(f"the lerobot backend's checkpoint directory '{path}' does not exist")
        try:
            self._model = Classifier.from_pretrained(path).to(device).eval()
        except Exception as exc:  # from_pretrained raises many types for a bad checkpoint
            raise ClassifierError(f"cannot load LeRobot classifier '{path}': {str(exc).splitlines()[0]}") from None
        torch.set_num_threads(cpu_threads)  # process-wide: the reward node's one model
        self._torch = torch
        self._device = device
        self.preprocessing = preprocessing  # replaced live when crops change
        self.cameras = len(self._model.image_keys)

    def predict(self, images: Sequence[np.ndarray]) -> float:
        torch = self._torch
        with torch.inference_mode():
            tensors = [torch.from_numpy(self.preprocessing.to_tensor(img, i)).to(self._device)
                       for i, img in enumerate(images)]
            probabilities = self._model.predict(tensors).probabilities
        return float(probabilities.reshape(-1)[0])


def make_classifier(backend: str, model_path: str, preprocessing: Preprocessing,
                    color_rule: ColorRuleClassifier | None = None, device: str = "cpu",
                    cpu_threads: int = DEFAULT_CPU_THREADS) -> RewardClassifier:
    if backend == "color":
        return color_rule or ColorRuleClassifier()
    if backend == "onnx":
        return OnnxClassifier(model_path, preprocessing, cpu_threads=cpu_threads)
    if backend == "lerobot":
        return LeRobotClassifier(model_path, preprocessing, device, cpu_threads)
    raise ClassifierError(f"unknown backend '{backend}' (color, onnx, lerobot)")
