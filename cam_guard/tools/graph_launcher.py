"""hilserl_graph: the camera → reward → preview graph as separate exec'd processes.

`ros2 launch cam_guard hilserl.launch.py` does the same with launch_ros; this command needs no
launch install (pip-only machines, CI). It reads the same YAML, starts one process per node
(subprocess: fork+exec, never a bare fork), forwards Ctrl-C/SIGTERM, restarts a node that
crashed with back-off, and exits 0 once every node has stopped.

    hilserl_graph [--cameras front,wrist] [--devices DEV,DEV] [--config FILE] [--set NODE.PARAM=VALUE ...]
                  [--headless|--window] [--web-port PORT] [--duration S]

`--cameras` starts one camera_node per name, in namespace /<name>; see cam_guard.ros.cell. Every
node's parameters (YAML, camera list, `--set`) are checked by that node's own rules before any node
starts (cam_guard.tools.graph_config): a bad value is one error line and exit 2, nothing started.
"""

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cam_guard.common.child_process import LAUNCHER_PID_VAR
from cam_guard.common.redact import redact
from cam_guard.common.startup import deferred_interrupts, mark_started, stop_requested
from cam_guard.ros.cell import CAMERA_NODE, CellError, NodeLaunch, cell_nodes, parse_cell
from cam_guard.ros.fastdds_setup import FastDdsSetupError
from cam_guard.ros.parameters import ConfigError, as_text
from cam_guard.ros.runtime import prepare_ros_process
from cam_guard.tools.graph_config import EXIT_BAD_CONFIG, PlannedNode, check_graph, node_parameter, parameter_names

Overrides = dict[str, dict[str, Any]]  # `--set` target (camera, a camera's name, reward, preview) -> values
STOP_GRACE_S = 5.0
BACKOFF_INITIAL_S = 0.5
BACKOFF_MAX_S = 5.0
STABLE_AFTER_S = 10.0  # a node that ran this long before crashing starts over at the initial back-off


def default_config() -> Path:
    """The installed share/cam_guard/config/hilserl.yaml, else the source checkout's."""
    try:
        from ament_index_python.packages import get_package_share_directory

        installed = Path(get_package_share_directory("cam_guard")) / "config" / "hilserl.yaml"
        if installed.is_file():
            return installed
    except (ImportError, LookupError, OSError):  # no ament_index, package not indexed, no AMENT_PREFIX_PATH
        pass
    return Path(__file__).resolve().parents[2] / "config" / "hilserl.yaml"


@dataclass
class ManagedNode:
    name: str
    module: str
    args: list[str]
    proc: subprocess.Popen | None = None
    started_at: float = 0.0
    backoff_s: float = BACKOFF_INITIAL_S
    restart_at: float | None = None

    def start(self) -> None:
        with deferred_interrupts():  # a Ctrl-C now reaches the node once it can take it quietly
            self.proc = subprocess.Popen([sys.executable, "-m", self.module, *self.args],
                                         env={**os.environ, LAUNCHER_PID_VAR: str(os.getpid())})
        self.started_at = time.monotonic()
        self.restart_at = None
        print(f"[hilserl_graph] started {self.name} (pid {self.proc.pid})", flush=True)


def parse_overrides(items: list[str], nodes: list[NodeLaunch]) -> Overrides:
    """`camera.width=320` -> {'camera': {'width': 320}}, each value checked by that node's own rules. NODE
    is `camera` (every camera), a camera's name (that camera only), `reward` or `preview`."""
    executables = {CAMERA_NODE: "camera_node", **{n.label: n.executable for n in nodes}}
    overrides: Overrides = {}
    for item in items:
        key, sep, text = item.partition("=")
        node, dot, param = key.partition(".")
        if not sep or not dot or node not in executables or not param:
            raise ConfigError(f"--set '{item}' must be NODE.PARAM=VALUE with NODE in {', '.join(executables)}")
        declared = node_parameter(executables[node], param)
        if declared is None:
            raise ConfigError(f"--set '{item}': {node} has no parameter '{param}' "
                              f"(it has: {', '.join(parameter_names(executables[node]))})")
        try:
            overrides.setdefault(node, {})[param] = declared.from_text(text)
        except ConfigError as exc:
            raise ConfigError(f"--set {item}: {exc}") from None
    return overrides


def node_overrides(node: NodeLaunch, overrides: Overrides) -> dict[str, Any]:
    """On top of the YAML, the last one winning: what the camera list implies, `--set` for every
    camera, `--set` for this node."""
    keys = dict.fromkeys([CAMERA_NODE, node.label] if node.executable == "camera_node" else [node.label])
    values = dict(node.parameters)
    for key in keys:
        values.update(overrides.get(key, {}))
    return values


def node_arguments(node: NodeLaunch, config: Path, overrides: Overrides) -> list[str]:
    values = [arg for name, value in node_overrides(node, overrides).items()
              for arg in ("-p", f"{name}:={as_text(value)}")]
    return ["--ros-args", "-r", f"__node:={node.node_name}", "-r", f"__ns:={node.namespace}",
            "--params-file", str(config), *values]


class Graph:
    def __init__(self, config: Path, nodes: list[NodeLaunch], overrides: Overrides) -> None:
        self.nodes = [ManagedNode(node.label, f"cam_guard.{node.executable}", node_arguments(node, config, overrides))
                      for node in nodes]
        self.failed: str | None = None

    def run(self, duration: float | None) -> int:
        for node in self.nodes:
            node.start()
        deadline = None if duration is None else time.monotonic() + duration
        while not stop_requested.wait(0.1):
            if deadline is not None and time.monotonic() >= deadline:
                break
            self._supervise()
            if self.failed:
                break
        self._stop_all()
        if self.failed:
            print(f"[hilserl_graph] error: {self.failed}", file=sys.stderr, flush=True)
            return 1
        return 0

    def _supervise(self) -> None:
        now = time.monotonic()
        for node in self.nodes:
            assert node.proc is not None
            if node.restart_at is not None:
                if now >= node.restart_at:
                    node.start()
                continue
            code = node.proc.poll()
            if code is None:
                continue
            if code == EXIT_BAD_CONFIG:
                self.failed = f"{node.name} rejected its parameters (exit {code}); not restarting"
                return
            if now - node.started_at >= STABLE_AFTER_S:
                node.backoff_s = BACKOFF_INITIAL_S
            node.restart_at = now + node.backoff_s
            print(f"[hilserl_graph] {node.name} exited with code {code}; restarting in {node.backoff_s:.1f} s",
                  flush=True)
            node.backoff_s = min(node.backoff_s * 2, BACKOFF_MAX_S)

    def _stop_all(self) -> None:
        running = [n.proc for n in self.nodes if n.proc is not None and n.proc.poll() is None]
        for proc in running:
            proc.send_signal(signal.SIGINT)
        deadline = time.monotonic() + STOP_GRACE_S
        for proc in running:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                print(f"[hilserl_graph] pid {proc.pid} ignored SIGINT; its threads' stacks follow, then SIGKILL",
                      file=sys.stderr, flush=True)
                proc.send_signal(signal.SIGUSR1)  # faulthandler in the node prints where it is stuck
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=1.0)
                proc.kill()
                proc.wait(timeout=5)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="hilserl_graph", description=__doc__.split("\n\n")[0])
    parser.add_argument("--cameras", default="", metavar="NAME,NAME",
                        help="one camera_node per name, in namespace /NAME, in the reward model's input order "
                             "(default: one camera with the root namespace's topics)")
    parser.add_argument("--devices", default="", metavar="DEV,DEV",
                        help="the cameras' devices, same order (default: the YAML's device)")
    parser.add_argument("--config", type=Path, default=None, help="parameter YAML (default: the package's)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="NODE.PARAM=VALUE",
                        help="override one parameter, e.g. --set camera.device=/dev/video0 (repeatable)")
    window = parser.add_mutually_exclusive_group()
    window.add_argument("--headless", action="store_true", help="no preview window (the default)")
    window.add_argument("--window", action="store_true", help="show the preview in an OpenCV window")
    parser.add_argument("--web-port", type=int, default=None, metavar="PORT",
                        help="the preview in a browser at http://127.0.0.1:PORT/ (same as --set preview.web_port=PORT)")
    parser.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    args = parser.parse_args(argv)
    config = args.config or default_config()
    try:  # every node's parameters, checked by its own rules before any node starts
        nodes = cell_nodes(parse_cell(args.cameras, args.devices))
        overrides = parse_overrides(args.overrides, nodes)
        if args.window:
            overrides.setdefault("preview", {})["show_window"] = True
        if args.web_port is not None:
            overrides.setdefault("preview", {})["web_port"] = args.web_port
        check_graph([config], [PlannedNode(n.executable, n.fqn, node_overrides(n, overrides)) for n in nodes])
    except (CellError, ConfigError) as exc:
        print(f"[hilserl_graph] error: {redact(str(exc))}", file=sys.stderr, flush=True)
        raise SystemExit(EXIT_BAD_CONFIG) from None
    try:
        notes = prepare_ros_process(follow_starter=False)  # the profile choice is inherited by every node
    except FastDdsSetupError as exc:
        print(f"[hilserl_graph] error: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(EXIT_BAD_CONFIG) from None
    for note in notes:
        print(f"[hilserl_graph] {note}", flush=True)
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    graph = Graph(config, nodes, overrides)
    mark_started()  # Ctrl-C / SIGTERM now set stop_requested: the nodes are stopped, then we exit
    print(f"[hilserl_graph] config {config}; Ctrl-C stops the graph", flush=True)
    raise SystemExit(graph.run(args.duration))


if __name__ == "__main__":
    main()
