"""The preview overlay, drawn with OpenCV on a copy of the frame. No ROS here."""

from dataclasses import dataclass

import cv2
import numpy as np

from cam_guard.reward.success import is_success

SUCCESS_BGR = (60, 200, 60)
FAILURE_BGR = (40, 40, 220)
NO_SIGNAL_BGR = (0, 0, 180)
BAR_HEIGHT = 28
BAR_BACKGROUND_BGR = (30, 30, 30)
STATUS_ORIGIN = (8, 40)  # below the synthetic camera's frame-number blocks (rows 0-15), which tests read back
BANNER_HEIGHT_FRACTION = 0.2  # the NO SIGNAL banner: a band across the middle of the frame


@dataclass
class OverlayInfo:
    probability: float | None  # None until the classifier has spoken
    threshold: float | None  # the classifier's, None until it has spoken
    camera_state: str
    frame_age_s: float | None
    fps: float
    stale_after_s: float = 1.0

    @property
    def stale(self) -> bool:
        return self.frame_age_s is None or self.frame_age_s > self.stale_after_s


def blank_frame(width: int = 640, height: int = 480) -> np.ndarray:
    return np.zeros((height, width, 3), np.uint8)


def banner_rows(height: int) -> slice:
    band = int(height * BANNER_HEIGHT_FRACTION)
    top = (height - band) // 2
    return slice(top, top + band)


def draw_overlay(frame: np.ndarray, info: OverlayInfo) -> np.ndarray:
    """Return a new BGR image: the frame with probability bar, threshold, state, age and fps."""
    out = frame.copy()
    if info.stale:
        draw_no_signal(out)
    draw_probability_bar(out, info.probability, info.threshold)
    draw_status(out, status_text(info))
    return out


def status_text(info: OverlayInfo, label: str = "") -> str:
    age = "--" if info.frame_age_s is None else f"{info.frame_age_s * 1000:.0f} ms"
    return f"{label + '  ' if label else ''}{info.camera_state}  age {age}  {info.fps:.1f} fps"


def draw_no_signal(region: np.ndarray) -> None:
    """In place: the picture dimmed, so nobody mistakes it for live, under a NO SIGNAL banner."""
    height, width = region.shape[:2]
    region //= 3
    rows = banner_rows(height)
    region[rows] = NO_SIGNAL_BGR
    text = "NO SIGNAL"
    scale = max(0.6, width / 640)
    (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale * 1.5, 3)
    cv2.putText(region, text, ((width - tw) // 2, rows.start + (rows.stop - rows.start + th) // 2),
                cv2.FONT_HERSHEY_SIMPLEX, scale * 1.5, (255, 255, 255), 3, cv2.LINE_AA)


def draw_probability_bar(out: np.ndarray, probability: float | None, threshold: float | None) -> None:
    """In place, along the bottom BAR_HEIGHT rows: the probability, the threshold line (the classifier's,
    None until it has spoken), the value."""
    height, width = out.shape[:2]
    top = height - BAR_HEIGHT
    success = probability is not None and threshold is not None and is_success(probability, threshold)
    cv2.rectangle(out, (0, top), (width - 1, height - 1), BAR_BACKGROUND_BGR, -1)
    if probability is not None:
        filled = round(probability * (width - 1))
        cv2.rectangle(out, (0, top), (filled, height - 1), SUCCESS_BGR if success else FAILURE_BGR, -1)
    if threshold is not None:
        x_threshold = round(threshold * (width - 1))
        cv2.line(out, (x_threshold, top - 4), (x_threshold, height - 1), (255, 255, 255), 2)
    label = "p = --" if probability is None else f"p = {probability:.2f}"
    label += "  SUCCESS" if success else ""
    cv2.putText(out, label, (8, height - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA)


def draw_status(region: np.ndarray, text: str) -> None:
    """In place: one line of white text on a dark box near the top left. (A thicker black copy as
    outline does not line up with OpenCV 5's font: glyph widths change with thickness.)"""
    (tw, th), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.6, 1)
    x, y = STATUS_ORIGIN
    cv2.rectangle(region, (x - 4, y - th - 4), (x + tw + 4, y + baseline + 2), BAR_BACKGROUND_BGR, -1)
    cv2.putText(region, text, STATUS_ORIGIN, cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
