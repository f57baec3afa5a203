"""CameraInfo from a camera_calibration_parsers YAML file (the one camera_calibration writes)."""

from pathlib import Path

import yaml
from sensor_msgs.msg import CameraInfo


def load_calibration(url: str) -> CameraInfo:
    """Read `file:///path.yaml` or a plain path; raises ValueError with the reason."""
    path = Path(url[len("file://"):] if url.startswith("file://") else url).expanduser()
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"cannot read calibration '{path}': {exc}") from None
    info = CameraInfo()
    try:
        info.width = int(data["image_width"])
        info.height = int(data["image_height"])
        info.distortion_model = str(data.get("distortion_model", "plumb_bob"))
        info.k = [float(v) for v in data["camera_matrix"]["data"]]
        info.d = [float(v) for v in data["distortion_coefficients"]["data"]]
        info.r = [float(v) for v in data["rectification_matrix"]["data"]]
        info.p = [float(v) for v in data["projection_matrix"]["data"]]
    except (KeyError, TypeError, ValueError, AssertionError) as exc:
        raise ValueError(f"calibration '{path}' is malformed: {exc!r}") from None
    return info


def camera_info_for(width: int, height: int, calibration: CameraInfo | None) -> CameraInfo:
    """CameraInfo for a frame of this size: the calibration when it matches, else size only."""
    if calibration is not None and (calibration.width, calibration.height) == (width, height):
        info = CameraInfo()
        info.width, info.height = width, height
        info.distortion_model = calibration.distortion_model
        info.k, info.d, info.r, info.p = calibration.k, calibration.d, calibration.r, calibration.p
        return info
    info = CameraInfo()
    info.width, info.height = width, height
    return info
