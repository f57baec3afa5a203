"""What every cam_guard executable shares: parameter declaration, one-line errors, clean exit."""

import faulthandler
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import rclpy
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy._rclpy_pybind11 import RCLError
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node

from cam_guard.common import fork_audit
from cam_guard.common.child_process import die_with_launcher
from cam_guard.ros.parameters import ConfigError
from cam_guard.ros.transport import apply_shm_profile, remove_orphaned_fastdds_segments


class GuardedNode(Node):
    """A Node with declared-and-validated parameters and an explicit exit code."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.exit_code: int | None = None  # set to stop spinning with this code

    def param(self, name: str, default: Any, description: str = "", *, dynamic_typing: bool = False,
              int_range: tuple[int, int] | None = None,
              float_range: tuple[float, float] | None = None,
              choices: Sequence[str] | None = None) -> Any:
        descriptor = ParameterDescriptor(name=name, description=description, read_only=True,
                                         dynamic_typing=dynamic_typing)
        if int_range is not None:
            descriptor.integer_range = [IntegerRange(from_value=int_range[0], to_value=int_range[1], step=0)]
        if float_range is not None:
            descriptor.floating_point_range = [
                FloatingPointRange(from_value=float(float_range[0]), to_value=float(float_range[1]), step=0.0)]
        if choices is not None:
            descriptor.additional_constraints = "one of: " + ", ".join(choices)
        try:
            value = self.declare_parameter(name, default, descriptor).value
        except ParameterException as exc:
            raise ConfigError(_one_line(exc, name, int_range or float_range)) from None
        if dynamic_typing:
            value = str(value)  # `-p device:=0` arrives as an integer
        if choices is not None and value not in choices:
            raise ConfigError(f"parameter '{name}' = '{value}' is not one of: {', '.join(choices)}")
        return value

    def publish_while_up(self, publish: Callable[[], None]) -> bool:
        """Run `publish` from a worker thread; False, instead of an RCLError, when Ctrl-C has
        already shut the context down under it (the thread should then just stop)."""
        try:
            publish()
        except RCLError:
            if self.context.ok():
                raise
            return False
        return True

    def close(self) -> None:
        """Stop threads and release resources; called once on the way out."""


def _one_line(exc: Exception, name: str, bounds: tuple[float, float] | None) -> str:
    text = " ".join(str(exc).split())
    if bounds is not None and "range" in text.lower():
        return f"parameter '{name}' is out of range [{bounds[0]}, {bounds[1]}]"
    return f"parameter '{name}': {text}"


def spin_until_shutdown(node: Node, should_stop: Callable[[], bool] = lambda: False) -> None:
    """Spin until Ctrl-C/SIGTERM (rclpy's handlers shut the context down) or `should_stop()`."""
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        while rclpy.ok() and not should_stop():
            executor.spin_once(timeout_sec=0.2)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except RuntimeError:  # RCLError is one
        if rclpy.ok():
            raise
        # The signal handler shut the context down while spin_once was waiting or taking a message.
    finally:
        executor.shutdown(timeout_sec=1.0)


def prepare_ros_process() -> tuple[int, int]:
    """What every cam_guard process with (or spawning) a DDS participant does before rclpy.init().

    Follows its launcher when hilserl_graph started it; records forks when asked
    (CAM_GUARD_FORK_AUDIT); prints every thread's stack on SIGUSR1 (hilserl_graph asks for it
    before it SIGKILLs a node that ignored Ctrl-C); selects the shipped Fast DDS profile; removes
    segments left by killed participants. Returns what was removed (count, bytes), to be logged
    once a logger exists.
    """
    die_with_launcher()
    fork_audit.install_from_env()
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    apply_shm_profile()
    return remove_orphaned_fastdds_segments()


def run_node(node_class: type[GuardedNode], args: Sequence[str] | None = None) -> int:
    """Create, spin and tear down a node; Ctrl-C and SIGTERM exit 0, bad parameters exit 2."""
    orphans, freed = prepare_ros_process()
    rclpy.init(args=args)
    if orphans:
        rclpy.logging.get_logger("cam_guard").info(
            f"removed {orphans} Fast DDS shared-memory segment(s) ({freed / 2**20:.0f} MiB) left by killed processes")
    try:
        node = node_class()
    except ConfigError as exc:
        executable = Path(sys.argv[0]).stem  # camera_node, whether run as a script or with -m
        print(f"[{executable}] error: {exc}", file=sys.stderr)
        rclpy.try_shutdown()
        return 2
    except KeyboardInterrupt:  # Ctrl-C while starting (a launcher stopping a node it just restarted)
        rclpy.try_shutdown()
        return 0
    try:
        spin_until_shutdown(node, lambda: node.exit_code is not None)
    finally:
        node.close()
        node.destroy_node()
        rclpy.try_shutdown()
    return node.exit_code or 0
