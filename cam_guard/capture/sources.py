"""What a `device` parameter means, and how OpenCV opens it (used inside the capture worker).

Accepted forms: `synthetic`; a V4L2 index (`0`); a device path (`/dev/video0`, or a stable
`/dev/v4l/by-id/...` link, resolved again at every open so a re-enumerated camera is found);
a URL, a video file or a named pipe (FIFO) carrying MJPEG, opened through OpenCV's FFmpeg backend.
"""

import contextlib
import glob
import os
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

from cam_guard.capture.credentials import read_credentials, with_credentials
from cam_guard.capture.jpeg import camera_jpeg, check_jpeg, decode_jpeg
from cam_guard.capture.synthetic import synthetic_frame
from cam_guard.capture.v4l2_device import explain_open_failure, is_capture_node
from cam_guard.common.redact import redact

SourceKind = Literal["synthetic", "v4l2", "ffmpeg"]


class SourceError(ValueError):
    """A device string that cannot name any source."""


@dataclass(frozen=True)
class SourceSpec:
    kind: SourceKind
    target: str  # device path, index digits, URL or file path; a URL may hold a password: never show it

    def __str__(self) -> str:
        return redact(self.target) if self.kind != "synthetic" else "synthetic"

    def __repr__(self) -> str:
        return f"SourceSpec({self.kind}, {self})"


def parse_source(text: str) -> SourceSpec:
    text = text.strip()
    if not text:
        raise SourceError("device is empty")
    if text == "synthetic":
        return SourceSpec("synthetic", "synthetic")
    if text.isdigit():
        return SourceSpec("v4l2", text)
    if text.startswith("/dev/"):
        return SourceSpec("v4l2", text)
    if "://" in text:
        return SourceSpec("ffmpeg", text)
    if os.path.isfile(text) or is_fifo(text):
        return SourceSpec("ffmpeg", os.path.abspath(text))
    raise SourceError(
        f"device '{redact(text)}' is not 'synthetic', a V4L2 index, a /dev path, a URL or an existing file")


# A UVC camera's auto exposure and white balance start over at every stream-on: its first frames
# are dark or tinted (LeRobot's OpenCV camera reads them away for 1 s at connect).
USB_WARMUP_S = 0.5


def warmup_for(spec: SourceSpec, setting: float) -> float:
    """Seconds of frames to withhold after each open of `spec`: `setting` when >= 0, else by kind
    (USB cameras settle; files, streams, pipes and the synthetic source need not)."""
    if setting >= 0:
        return setting
    return USB_WARMUP_S if spec.kind == "v4l2" else 0.0


def explain_failure(spec: SourceSpec, settings: "CaptureSettings") -> str:
    """Why `spec` does not open or stream, where the system can say (V4L2 devices); else ''.
    (FFmpeg says why a URL fails on stderr, which the supervisor relays.)"""
    if spec.kind != "v4l2":
        return ""
    return explain_open_failure(device_path(spec), settings.fourcc)


def device_path(spec: SourceSpec) -> str:
    """The device node (or by-id link) of a V4L2 source; an index names /dev/videoN."""
    return f"/dev/video{spec.target}" if spec.target.isdigit() else spec.target


def is_fifo(path: str) -> bool:
    try:
        return stat.S_ISFIFO(os.stat(path).st_mode)
    except OSError:
        return False


_FFMPEG_OPTIONS = "OPENCV_FFMPEG_CAPTURE_OPTIONS"  # read by OpenCV at each FFmpeg open


@contextlib.contextmanager
def _pipe_probe_options(target: str) -> Iterator[None]:
    """While a named pipe is opened: FFmpeg probes no container (a pipe has none to probe; it would read
    for the whole open timeout). Only for that open: a worker whose open failed opens the next source,
    maybe a URL. Options the user set are left alone."""
    if not is_fifo(target) or _FFMPEG_OPTIONS in os.environ:
        yield
        return
    os.environ[_FFMPEG_OPTIONS] = "analyzeduration;0|probesize;32768"
    try:
        yield
    finally:
        del os.environ[_FFMPEG_OPTIONS]


def video_devices() -> list[str]:
    """Capture device nodes present now, stable by-id links first; nodes that cannot capture (the
    metadata node uvcvideo adds beside each camera) left out: recovery would waste attempts on them."""
    by_id = sorted(glob.glob("/dev/v4l/by-id/*-video-index0"))
    nodes = sorted(glob.glob("/dev/video*"), key=lambda p: (len(p), p))
    resolved = {os.path.realpath(p) for p in by_id}
    return by_id + [n for n in nodes if n not in resolved and is_capture_node(n)]


def fourcc_to_str(code: float) -> str:
    value = int(code)
    text = "".join(chr((value >> (8 * i)) & 0xFF) for i in range(4))
    return text if text.isprintable() and text.strip() else ""


@dataclass
class CaptureSettings:
    width: int = 640
    height: int = 480
    fps: float = 30.0
    fourcc: str = "MJPG"
    buffer_size: int = 1
    open_timeout_ms: int = 2000
    read_timeout_ms: int = 1000
    credentials: str = ""  # where a URL's user:password is (capture/credentials.py), never the secret


@dataclass
class Captured:
    """One frame as read: pixels, and the camera's JPEG when it sends JPEG."""
    image: np.ndarray | None  # None when the JPEG was only checked: nobody needed the pixels
    jpeg: bytes | None
    width: int
    height: int


@dataclass
class NegotiatedFormat:
    width: int
    height: int
    fps: float
    fourcc: str
    backend: str
    compressed: bool  # frames arrive as JPEG bytes we can publish without re-encoding


class CaptureSource:
    """One opened source. `read()` returns the next frame; raises EOFError when it is gone.

    `decode = False` skips decoding JPEG frames (a node with no raw-image subscriber): each is still
    checked at 1/8 scale, so a corrupt frame counts as bad and a run of them stalls the watchdog."""

    def __init__(self, spec: SourceSpec, settings: CaptureSettings, decode: bool = True) -> None:
        self.spec = spec
        self.settings = settings
        self.decode = decode
        self._cap: cv2.VideoCapture | None = None
        self._index = 0
        self._next_due = time.monotonic()
        self._raw_jpeg = False
        self._loop_file = False
        if spec.kind == "synthetic":
            self.format = NegotiatedFormat(settings.width, settings.height, settings.fps,
                                           "BGR3", "synthetic", False)
        else:
            self.format = self._open()

    def _open(self) -> NegotiatedFormat:
        s = self.settings
        if self.spec.kind == "v4l2":
            target: int | str = int(self.spec.target) if self.spec.target.isdigit() \
                else os.path.realpath(self.spec.target)
            cap = cv2.VideoCapture(target, cv2.CAP_V4L2)
            if cap.isOpened():
                # FOURCC first: many UVC cameras only offer large sizes at full rate in MJPG.
                cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter.fourcc(*s.fourcc))
                cap.set(cv2.CAP_PROP_FRAME_WIDTH, s.width)
                cap.set(cv2.CAP_PROP_FRAME_HEIGHT, s.height)
                cap.set(cv2.CAP_PROP_FPS, s.fps)
                cap.set(cv2.CAP_PROP_BUFFERSIZE, s.buffer_size)
        else:
            url = with_credentials(self.spec.target, read_credentials(s.credentials))
            with _pipe_probe_options(self.spec.target):
                cap = cv2.VideoCapture(url, cv2.CAP_FFMPEG, [
                    cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, s.open_timeout_ms,
                    cv2.CAP_PROP_READ_TIMEOUT_MSEC, s.read_timeout_ms,
                ])
            self._loop_file = os.path.isfile(self.spec.target)  # a file plays in a loop; a pipe cannot seek
        if not cap.isOpened():
            cap.release()
            raise EOFError(f"could not open {self.spec}")
        fourcc = fourcc_to_str(cap.get(cv2.CAP_PROP_FOURCC))
        if fourcc == "MJPG":
            # Take the JPEG bytes themselves: published as-is on image_raw/compressed, decoded here.
            if self.spec.kind == "v4l2":
                self._raw_jpeg = cap.set(cv2.CAP_PROP_CONVERT_RGB, 0)
            else:
                self._raw_jpeg = cap.set(cv2.CAP_PROP_FORMAT, -1)
        self._cap = cap
        fps = cap.get(cv2.CAP_PROP_FPS)
        return NegotiatedFormat(int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
                                fps if fps > 0 else s.fps, fourcc or "?", cap.getBackendName(), self._raw_jpeg)

    def read(self) -> Captured:
        """Next frame: BGR pixels (unless only checked) and its JPEG bytes when the source sends JPEG.

        Raises EOFError when the source is gone, ValueError for a frame that is not a valid image.
        """
        if self._cap is None:
            return Captured(self._read_synthetic(), None, self.format.width, self.format.height)
        ok, buf = self._cap.read()
        if not ok and self._loop_file:
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, buf = self._cap.read()
        if not ok or buf is None:
            raise EOFError(f"read from {self.spec} failed")
        if self._loop_file:
            self._pace()
        if not self._raw_jpeg:
            return Captured(buf, None, buf.shape[1], buf.shape[0])
        jpeg, extent = camera_jpeg(buf.tobytes())
        if self.decode:
            image = decode_jpeg(jpeg)
            return Captured(image, jpeg, image.shape[1], image.shape[0])
        check_jpeg(jpeg, extent)
        return Captured(None, jpeg, extent.width, extent.height)

    def _pace(self) -> None:
        # Files and the synthetic source would otherwise run as fast as the CPU allows.
        self._next_due += 1.0 / self.format.fps
        delay = self._next_due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        else:
            self._next_due = time.monotonic()

    def _read_synthetic(self) -> np.ndarray:
        self._pace()
        frame = synthetic_frame(self._index, self.format.width, self.format.height)
        self._index += 1
        return frame

    def release(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
