"""The camera controls HIL-SERL users lock: exposure, white balance, focus, gain, brightness.

A reward classifier trained under one exposure fails when auto exposure drifts, so these are set by
name; an unset one is left as the camera has it. They go to the camera at every open, because a
replugged camera (or a replaced worker's fresh stream) comes back with its defaults; in this order,
each mode before its value, because kernel 6.x refuses a manual value while the automatic mode is on.
Each is checked against the range the camera reports, and what the camera then holds is read back.
"""

import errno
from dataclasses import dataclass

from cam_guard.capture.v4l2_device import ControlRange, get_control, query_control, set_control

MODES = ("auto", "manual")
ControlValue = int | str  # a number, or "auto"/"manual" for a mode

# V4L2 control ids (linux/v4l2-controls.h) and the auto-exposure menu entries uvcvideo uses.
CID_BRIGHTNESS = 0x00980900
CID_AUTO_WHITE_BALANCE = 0x0098090C
CID_GAIN = 0x00980913
CID_WHITE_BALANCE_TEMPERATURE = 0x0098091A
CID_EXPOSURE_AUTO = 0x009A0901
CID_EXPOSURE_ABSOLUTE = 0x009A0902
CID_FOCUS_ABSOLUTE = 0x009A090A
CID_FOCUS_AUTO = 0x009A090C
EXPOSURE_AUTO, EXPOSURE_MANUAL, EXPOSURE_APERTURE_PRIORITY = 0, 1, 3


@dataclass(frozen=True)
class Control:
    name: str  # the parameter, under `controls.`
    cid: int
    is_mode: bool  # takes "auto"/"manual" instead of a number
    what: str

    def device_value(self, value: ControlValue, camera: ControlRange) -> int:
        """What to write for `value` (a mode maps to the camera's own menu entry or boolean)."""
        if not self.is_mode:
            return int(value)
        if self.cid != CID_EXPOSURE_AUTO:
            return 1 if value == "auto" else 0
        if value == "manual":
            return EXPOSURE_MANUAL
        # UVC cameras call their automatic exposure "aperture priority"; V4L2's plain AUTO is rare.
        return EXPOSURE_APERTURE_PRIORITY if EXPOSURE_APERTURE_PRIORITY in camera.menu else EXPOSURE_AUTO

    def shown(self, device_value: int) -> str:
        if not self.is_mode:
            return str(device_value)
        manual = device_value == (EXPOSURE_MANUAL if self.cid == CID_EXPOSURE_AUTO else 0)
        return "manual" if manual else "auto"

    def out_of_range(self, value: ControlValue, camera: ControlRange) -> str:
        """Why the camera cannot take `value`; '' when it can."""
        wanted = self.device_value(value, camera)
        if camera.menu:
            return "" if wanted in camera.menu else f"the camera offers no {value} {self.what}"
        if not camera.minimum <= wanted <= camera.maximum:
            return f"{value} is outside the camera's {camera}"
        return ""


CONTROLS = (
    Control("exposure_mode", CID_EXPOSURE_AUTO, True, "exposure"),
    Control("exposure", CID_EXPOSURE_ABSOLUTE, False, "exposure time (100 µs units)"),
    Control("white_balance_mode", CID_AUTO_WHITE_BALANCE, True, "white balance"),
    Control("white_balance_temperature", CID_WHITE_BALANCE_TEMPERATURE, False, "white balance temperature (K)"),
    Control("focus_mode", CID_FOCUS_AUTO, True, "focus"),
    Control("focus", CID_FOCUS_ABSOLUTE, False, "focus position"),
    Control("gain", CID_GAIN, False, "gain"),
    Control("brightness", CID_BRIGHTNESS, False, "brightness"),
)
BY_NAME = {c.name: c for c in CONTROLS}


def parse_control(name: str, text: str) -> ControlValue | None:
    """A parameter's text as a control value; None for '' (leave the camera's own). ValueError if neither."""
    text = text.strip()
    if not text:
        return None
    if BY_NAME[name].is_mode:
        if text not in MODES:
            raise ValueError(f"controls.{name} must be 'auto', 'manual' or '' (leave the camera's), not '{text}'")
        return text
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"controls.{name} must be an integer or '' (leave the camera's), not '{text}'") from None


def check_against(requests: dict[str, ControlValue], ranges: dict[str, ControlRange]) -> str:
    """Why the camera (its reported `ranges`; none known yet: anything goes) cannot take `requests`; ''."""
    for name, value in requests.items():
        camera = ranges.get(name)
        if camera is not None and (reason := BY_NAME[name].out_of_range(value, camera)):
            return f"controls.{name}: {reason}"
    return ""


def apply_controls(fd: int, requests: dict[str, ControlValue]) -> tuple[dict[str, ControlRange], dict[str, str]]:
    """Write `requests` to the camera open as `fd`, in CONTROLS order. Returns the ranges of every control
    the camera has, and per request what came of it: the value it holds now, or why it was not set."""
    ranges: dict[str, ControlRange] = {}
    results: dict[str, str] = {}
    for control in CONTROLS:
        camera = query_control(fd, control.cid)
        if camera is not None:
            ranges[control.name] = camera
        if control.name not in requests:
            continue
        value = requests[control.name]
        if camera is None:
            results[control.name] = f"not set: the camera has no {control.what} control"
            continue
        if reason := control.out_of_range(value, camera):
            results[control.name] = f"not set: {reason}"
            continue
        try:
            set_control(fd, control.cid, control.device_value(value, camera))
        except OSError as exc:
            hint = " (its automatic mode is on: set the mode to manual)" if exc.errno == errno.EACCES else ""
            results[control.name] = f"refused by the camera: {exc.strerror}{hint}"
            continue
        held = control.shown(get_control(fd, control.cid))
        results[control.name] = held if held == str(value) else f"{held} (asked {value}; the camera's {camera})"
    return ranges, results
