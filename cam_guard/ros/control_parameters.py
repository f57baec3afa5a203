"""camera_node's camera controls as parameters, `controls.<name>`: live-settable, '' leaves the camera's own."""

from typing import Any

from cam_guard.capture.controls import CONTROLS, ControlValue, check_against, parse_control
from cam_guard.capture.v4l2_device import ControlRange
from cam_guard.ros.parameters import ConfigError, Param, ParameterTable


def _checker(name: str) -> Any:
    def check(text: str) -> None:
        try:
            parse_control(name, text)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    return check


PARAMETERS = ParameterTable([
    Param(f"controls.{c.name}", "", f"{c.what}: " + ("'auto' or 'manual'" if c.is_mode else "a number in the "
          "camera's range") + "; '' leaves the camera's own setting", dynamic_typing=True, check=_checker(c.name))
    for c in CONTROLS])


def build(values: dict[str, Any], ranges: dict[str, ControlRange]) -> dict[str, ControlValue]:
    """The controls asked for, checked against the `ranges` the camera reported when last opened."""
    requests = {}
    for control in CONTROLS:
        value = parse_control(control.name, values[f"controls.{control.name}"])
        if value is not None:
            requests[control.name] = value
    if reason := check_against(requests, ranges):
        raise ConfigError(f"{reason} (as it reported when last opened)")
    return requests
