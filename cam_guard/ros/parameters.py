"""Node parameters as tables: declared, validated and applied the same way at start-up and live.

Each node lists its parameters as `Param`s and gives two functions: `build` turns all values into
the node's configuration (raising `ConfigError` for anything inconsistent) and `apply` hands a new
configuration to the running node. `LiveParameters` declares the table, builds once at start-up
(a `ConfigError` there is one line and exit code 2), and then validates every change made through
the parameter services (`ros2 param set`, rqt_reconfigure): a rejected value gets the reason in
the `SetParametersResult` and changes nothing; an accepted one is applied at once.

Validation that needs no node (type, range, choices, checks, `build`) is plain Python, so launch
files and `hilserl_graph` check arguments and YAML with the very same rules before any node starts.
"""

import array
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import yaml
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult
from rclpy.exceptions import ParameterException
from rclpy.node import Node
from rclpy.parameter import Parameter

from cam_guard.common.redact import redact


class ConfigError(ValueError):
    """A parameter value the node cannot work with; reported as one line, exit code 2."""


Config = TypeVar("Config")


def ros_type_name(value: Any) -> str:
    """The ROS parameter type a Python value would have: 'bool', 'integer', 'double', 'string',
    or '<type> array'; rclpy never converts between them (an integer is not a double)."""
    if isinstance(value, array.array):
        value = list(value)
    if isinstance(value, (list, tuple)):
        kinds = {ros_type_name(v) for v in value}
        if len(kinds) != 1 or next(iter(kinds)).endswith("array"):
            raise ConfigError(f"{list(value)!r} is not a list of values of one type")
        return f"{kinds.pop()} array"
    for kind, name in ((bool, "bool"), (int, "integer"), (float, "double"), (str, "string")):
        if isinstance(value, kind):
            return name
    raise ConfigError(f"{value!r} is not a ROS parameter value")


@dataclass(frozen=True)
class Param:
    """One parameter: what it is, what values it takes, and whether it can change while running."""

    name: str
    default: Any
    description: str
    int_range: tuple[int, int] | None = None
    float_range: tuple[float, float] | None = None
    choices: tuple[str, ...] | None = None
    fixed: str = ""  # why it cannot change while the node runs; "" = live
    dynamic_typing: bool = False  # text that may arrive as a number (`device:=0`), used as a string
    check: Callable[[Any], None] | None = None  # raises ConfigError for what no range expresses

    def descriptor(self) -> ParameterDescriptor:
        description = self.description + (f" (fixed while running: {self.fixed})" if self.fixed else "")
        descriptor = ParameterDescriptor(name=self.name, description=description, read_only=bool(self.fixed),
                                         dynamic_typing=self.dynamic_typing)
        if self.int_range is not None:
            descriptor.integer_range = [IntegerRange(from_value=self.int_range[0], to_value=self.int_range[1],
                                                     step=0)]
        if self.float_range is not None:
            descriptor.floating_point_range = [FloatingPointRange(
                from_value=float(self.float_range[0]), to_value=float(self.float_range[1]), step=0.0)]
        if self.choices is not None:
            descriptor.additional_constraints = "one of: " + ", ".join(self.choices)
        return descriptor

    def out_of_range(self) -> ConfigError:
        bounds = self.int_range or self.float_range
        assert bounds is not None
        return ConfigError(f"parameter '{self.name}' is out of range [{bounds[0]}, {bounds[1]}]")

    def validate(self, value: Any) -> Any:
        """The value as the node uses it; ConfigError with a one-line reason when it is not acceptable.

        Checks what rclpy checks (type, range) too, so values from YAML or a launch file can be
        checked before any node exists.
        """
        if isinstance(value, array.array):
            value = list(value)
        if self.dynamic_typing:
            if isinstance(value, (list, tuple)):
                raise ConfigError(f"parameter '{self.name}' must be a single value, not a list")
            value = str(value)
        else:
            expected, got = ros_type_name(self.default), ros_type_name(value)
            if got != expected:
                raise ConfigError(f"parameter '{self.name}' must be of type {expected}, not {got} ({value!r})")
        if isinstance(value, tuple):
            value = list(value)
        if self.int_range is not None and not self.int_range[0] <= value <= self.int_range[1]:
            raise self.out_of_range()
        if self.float_range is not None and not (math.isfinite(value)
                                                 and self.float_range[0] <= value <= self.float_range[1]):
            raise self.out_of_range()
        if self.choices is not None and value not in self.choices:
            raise ConfigError(f"parameter '{self.name}' = '{value}' is not one of: {', '.join(self.choices)}")
        if self.check is not None:
            self.check(value)
        return value

    def from_text(self, text: str) -> Any:
        """A command-line or launch-argument text as a value of this parameter's type (`0.7`, `[1, 2]`,
        `true`); integers are accepted where a double is expected. Validated like any other value."""
        if self.dynamic_typing or isinstance(self.default, str):
            return self.validate(text)
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            value = text
        if isinstance(self.default, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if isinstance(self.default, list) and self.default and isinstance(self.default[0], float) \
                and isinstance(value, list):
            value = [float(v) if isinstance(v, int) and not isinstance(v, bool) else v for v in value]
        return self.validate(value)


def as_text(value: Any) -> str:
    """A validated value as `-p name:=<text>` reads it back (rcl parses that text as YAML)."""
    return yaml.safe_dump(value, default_flow_style=True, width=1 << 20).removesuffix("\n...\n").strip()


class ParameterTable:
    """The parameters of one node, by name."""

    def __init__(self, params: Sequence[Param]) -> None:
        self.params = {p.name: p for p in params}
        if len(self.params) != len(params):
            raise ValueError("duplicate parameter names")

    def defaults(self) -> dict[str, Any]:
        return {name: p.default for name, p in self.params.items()}

    def validate(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Defaults overridden by `values` (names this node does not declare are ignored, as rclpy does)."""
        merged = self.defaults()
        for name, value in values.items():
            if name in self.params:
                merged[name] = self.params[name].validate(value)
        return merged


class LiveParameters(Generic[Config]):
    """A node's declared parameters, its current configuration, and live changes to both."""

    def __init__(self, node: Node, table: ParameterTable, build: Callable[[dict[str, Any]], Config],
                 apply: Callable[[Config, frozenset[str]], None]) -> None:
        self._table = table
        self._logger = node.get_logger()
        self._build = build
        self._apply = apply
        self.values = {name: self._declare(node, param) for name, param in table.params.items()}
        self.config = build(self.values)
        self._accepted: tuple[dict[str, Any], Config, frozenset[str]] | None = None
        node.add_on_set_parameters_callback(self._check)
        node.add_post_set_parameters_callback(self._applied)

    @staticmethod
    def _declare(node: Node, param: Param) -> Any:
        try:
            value = node.declare_parameter(param.name, param.default, param.descriptor()).value
        except ParameterException as exc:
            if "range" in str(exc).lower() and (param.int_range or param.float_range):
                raise param.out_of_range() from None
            text = str(exc.args[0]) if exc.args else str(exc)  # without rclpy's trailing ': <name>'
            raise ConfigError(f"parameter '{param.name}': {' '.join(text.split())}") from None
        return param.validate(value)

    def _check(self, changes: list[Parameter]) -> SetParametersResult:
        """rclpy has checked read-only, type and range; this checks the rest, before anything changes."""
        values = dict(self.values)
        changed = frozenset(p.name for p in changes if p.name in self._table.params)
        try:
            for change in changes:
                if change.name in changed:
                    values[change.name] = self._table.params[change.name].validate(change.value)
            config = self._build(values) if changed else self.config
        except ConfigError as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        self._accepted = (values, config, changed)
        return SetParametersResult(successful=True)

    def _applied(self, _changes: list[Parameter]) -> None:
        assert self._accepted is not None
        (self.values, self.config, changed), self._accepted = self._accepted, None
        if changed:
            self._logger.info("set " + redact(", ".join(f"{name} = {self.values[name]!r}" for name in sorted(changed))))
            self._apply(self.config, changed)
