"""What every cam_guard executable shares: start-up, one-line errors, quiet Ctrl-C, clean exit."""

import faulthandler
import itertools
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import rclpy
import yaml
from rclpy._rclpy_pybind11 import RCLError
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node

from cam_guard.common import fork_audit, startup
from cam_guard.common.child_process import die_with_starter
from cam_guard.common.redact import redact
from cam_guard.ros.fastdds_setup import FastDdsSetupError
from cam_guard.ros.parameters import ConfigError
from cam_guard.ros.transport import apply_fastdds_profile, remove_orphaned_fastdds_files

ROSOUT_MATCH_TIMEOUT_S = 3.0  # how long a node exiting on an error waits for a /rosout reader (discovery)
ROSOUT_DELIVERY_S = 0.5  # then lets the matched reader fetch the line before the participant goes


class GuardedNode(Node):
    """A Node with an explicit exit code; its parameters are a LiveParameters table (ros/parameters.py)."""

    starting: "GuardedNode | None" = None  # the node whose constructor is running (run_node reports its error)

    def __init__(self, name: str) -> None:
        super().__init__(name)
        GuardedNode.starting = self
        self.exit_code: int | None = None  # set to stop spinning with this code

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


def spin_until_shutdown(node: Node, should_stop: Callable[[], bool] = lambda: False,
                        executor: SingleThreadedExecutor | None = None) -> None:
    """Spin until Ctrl-C/SIGTERM (rclpy's handlers shut the context down; ours set
    `startup.stop_requested`) or `should_stop()`."""
    startup.mark_started()
    if executor is None:
        with startup.deferred_interrupts():  # rclpy cannot create an executor on a context Ctrl-C shut down
            if not rclpy.ok():
                return
            executor = SingleThreadedExecutor()
    try:
        executor.add_node(node)
        while rclpy.ok() and not should_stop() and not startup.stop_requested.is_set():
            executor.spin_once(timeout_sec=0.2)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except RuntimeError:  # RCLError is one
        if rclpy.ok():
            raise
        # The signal handler shut the context down while spin_once was waiting or taking a message.
    finally:
        executor.shutdown(timeout_sec=1.0)


def prepare_ros_process(follow_starter: bool = True) -> list[str]:
    """What every cam_guard process with (or spawning) a DDS participant does before rclpy.init().

    Dies with the process that started it (`follow_starter`: a node must not outlive its launcher
    or `ros2 run`); records forks when asked (CAM_GUARD_FORK_AUDIT); prints every thread's stack on
    SIGUSR1 (hilserl_graph asks for it before it SIGKILLs a node that ignored Ctrl-C); selects the
    Fast DDS profile (raises FastDdsSetupError on a setting that cannot work); removes the segments
    and ports killed participants left. Returns what it did, to be logged once a logger exists.
    """
    if follow_starter:
        die_with_starter(startup.parent_at_start)
    fork_audit.install_from_env()
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    notes = apply_fastdds_profile()
    orphans, freed = remove_orphaned_fastdds_files()
    if orphans:
        notes.append(f"removed {orphans} Fast DDS shared-memory segment(s) and port(s) ({freed / 2**20:.0f} MiB) "
                     "left by killed processes")
    return notes


def check_parameter_files(args: Sequence[str]) -> None:
    """Every `--params-file` must be readable YAML: rcl would fail inside rclpy.init with a traceback."""
    for flag, path in itertools.pairwise(args):
        if flag == "--params-file":
            try:
                yaml.safe_load(Path(path).read_text())
            except (OSError, yaml.YAMLError) as exc:
                raise ConfigError(f"cannot read parameter file '{path}': {' '.join(str(exc).split())}") from None


def _wait_for_rosout_reader(node: Node) -> None:
    """/rosout keeps recent lines for readers that join late (transient local), but only while this
    participant lives: a node exiting on an error gives rqt_console or `ros2 topic echo /rosout` a
    moment to match first. Discovery has no event to wait on here, so the graph is polled."""
    deadline = time.monotonic() + ROSOUT_MATCH_TIMEOUT_S
    while node.count_subscribers("/rosout") == 0:
        if time.monotonic() >= deadline:
            return
        time.sleep(0.05)
    time.sleep(ROSOUT_DELIVERY_S)


def _report_config_error(executable: str, exc: Exception) -> None:
    """One line: through the starting node's logger (console, /rosout, log file) when it exists."""
    message = redact(str(exc))
    node, GuardedNode.starting = GuardedNode.starting, None
    if node is None or not rclpy.ok():
        print(f"[{executable}] error: {message}", file=sys.stderr, flush=True)
        return
    node.get_logger().error(message)
    _wait_for_rosout_reader(node)
    node.destroy_node()


def run_node(node_class: type[GuardedNode], args: Sequence[str] | None = None) -> int:
    """Create, spin and tear down a node; Ctrl-C and SIGTERM exit 0, bad parameters exit 2."""
    executable = Path(sys.argv[0]).stem  # camera_node, whether run as a script or with -m
    startup.mark_started()  # a Ctrl-C from here on stops the node in order (stop_requested)
    try:
        notes = prepare_ros_process()
        check_parameter_files(sys.argv if args is None else args)
        # Threads DDS starts inherit the block: a Ctrl-C always lands in the main thread, and never
        # between init and the executor (rclpy cannot create one on a context that was shut down).
        with startup.deferred_interrupts():
            rclpy.init(args=args)
            executor = SingleThreadedExecutor()
    except (ConfigError, FastDdsSetupError, RCLError) as exc:
        _report_config_error(executable, exc)
        return 2
    for note in notes:
        rclpy.logging.get_logger("cam_guard").info(note)
    try:
        node = node_class()
    except ConfigError as exc:
        _report_config_error(executable, exc)
        rclpy.try_shutdown()
        return 2
    except KeyboardInterrupt:  # a constructor that meets Ctrl-C its own way
        rclpy.try_shutdown()
        return 0
    except Exception:
        if rclpy.ok():
            raise
        rclpy.try_shutdown()  # Ctrl-C shut the context down under the constructor: not an error
        return 0
    GuardedNode.starting = None
    try:
        spin_until_shutdown(node, lambda: node.exit_code is not None, executor)
    finally:
        node.close()
        node.destroy_node()
        rclpy.try_shutdown()
    return node.exit_code or 0
