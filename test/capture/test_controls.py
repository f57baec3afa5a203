"""Camera controls by name: parsing, mapping modes to the camera's own values, ranges. (Writing them to a
camera is tested against the emulated UVC camera in test_camera_uvc.py.)"""

import pytest

from cam_guard.capture.controls import BY_NAME, check_against, parse_control
from cam_guard.capture.v4l2_device import ControlRange

EXPOSURE_MENU = ControlRange(0, 3, 1, 3, (1, 3))  # a C920: manual and aperture priority only
EXPOSURE_TIME = ControlRange(3, 2047, 1, 250)


@pytest.mark.parametrize(("name", "text", "value"), [
    ("exposure_mode", "manual", "manual"), ("exposure", " 200 ", 200), ("brightness", "-10", -10),
    ("gain", "", None), ("focus_mode", "  ", None)])
def test_parse_control(name, text, value):
    assert parse_control(name, text) == value


@pytest.mark.parametrize(("name", "text"), [("exposure_mode", "on"), ("exposure", "fast"), ("focus", "1.5")])
def test_parse_control_refuses_what_the_control_does_not_take(name, text):
    with pytest.raises(ValueError, match=f"controls.{name} must be"):
        parse_control(name, text)


def test_modes_map_to_what_the_camera_offers():
    exposure_mode, white_balance_mode = BY_NAME["exposure_mode"], BY_NAME["white_balance_mode"]
    assert exposure_mode.device_value("auto", EXPOSURE_MENU) == 3, "UVC's auto exposure is aperture priority"
    assert exposure_mode.device_value("auto", ControlRange(0, 1, 1, 0, (0, 1))) == 0
    assert exposure_mode.device_value("manual", EXPOSURE_MENU) == 1
    assert (exposure_mode.shown(1), exposure_mode.shown(3)) == ("manual", "auto")
    boolean = ControlRange(0, 1, 1, 1)
    assert (white_balance_mode.device_value("auto", boolean), white_balance_mode.device_value("manual", boolean)) \
        == (1, 0)
    assert (white_balance_mode.shown(0), white_balance_mode.shown(1)) == ("manual", "auto")


def test_values_are_checked_against_the_ranges_the_camera_reported():
    ranges = {"exposure_mode": ControlRange(0, 3, 1, 3, (3,)), "exposure": EXPOSURE_TIME}
    assert check_against({"exposure": 2047, "gain": 10_000}, ranges) == "", "unknown ranges: anything goes"
    assert check_against({"exposure": 5000}, ranges) == "controls.exposure: 5000 is outside the camera's 3..2047"
    assert check_against({"exposure_mode": "manual"}, ranges) == \
        "controls.exposure_mode: the camera offers no manual exposure"
    assert check_against({"exposure": 5000}, {}) == ""
