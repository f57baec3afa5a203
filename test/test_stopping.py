"""Stopping as a terminal user does: Ctrl-C to the whole process group, at any moment, and
starters that die. Zero tracebacks, exit 0 within STOP_BOUND_S, and no process left behind."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import NodeProcess, process_alive
from sensor_msgs.msg import Image

STOP_BOUND_S = 5.0
NODES = ("cam_guard.camera_node", "cam_guard.reward_node", "cam_guard.preview_node")


def session_members(sid: int) -> list[int]:
    """Live processes of session `sid` (everything a `setsid` command started, however deep)."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[3]) == sid and fields[0] != "Z":
                members.append(int(entry.name))
    return members


def wait_until_gone(pids: list[int], timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while (alive := [p for p in pids if process_alive(p)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    return alive


def assert_quiet(output: str) -> None:
    for word in ("Traceback", "KeyboardInterrupt", "Exception ignored"):
        assert word not in output, output[max(0, output.find(word) - 2000):][:5000]


def slow_stop(took: float, output: str) -> str:
    """The failure message of a stop past the bound: where the node that ignored Ctrl-C was stuck
    (hilserl_graph prints its threads' stacks), or the output's end."""
    stuck = output.find("ignored SIGINT")
    return f"stopped after {took:.1f} s (bound {STOP_BOUND_S} s):\n" + (
        output[max(0, stuck - 500):][:12000] if stuck >= 0 else output[-3000:])


def wait_for_cam_guard_code(pid: int, timeout: float = 30) -> None:
    """Until cam_guard's first line has run in `pid` (common/startup.py catches SIGTERM, which a bare
    interpreter does not). Before that, Python itself is starting (site imports: 0.05-0.5 s here):
    a Ctrl-C then gets Python's own traceback, which no code of ours can prevent in a process
    another program started (processes cam_guard starts begin with Ctrl-C deferred)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = Path(f"/proc/{pid}/status").read_text()
        caught = int(next(line for line in status.splitlines() if line.startswith("SigCgt:")).split()[1], 16)
        if caught & (1 << (signal.SIGTERM - 1)):
            return
        time.sleep(0.002)
    raise AssertionError(f"pid {pid} never installed its signal handlers")


def ctrl_c_after(process: NodeProcess, ready: float | None = None) -> tuple[int, float]:
    """Ctrl-C the group `ready` seconds after cam_guard code started running in it (or now);
    returns exit code and seconds to exit."""
    if ready is not None:
        wait_for_cam_guard_code(process.pid)
        time.sleep(ready)
    started = time.monotonic()
    process.interrupt_group()
    try:
        code = process.wait(timeout=STOP_BOUND_S + 10)
    except subprocess.TimeoutExpired:
        raise AssertionError("still running 15 s after Ctrl-C:\n" + process.output()[-3000:]) from None
    return code, time.monotonic() - started


# Start-up moments: the launcher's imports, nodes' interpreter start and imports, rclpy.init, node
# constructors, capture workers starting.
@pytest.mark.parametrize("delay", [0.0, 0.2, 0.5, 0.9, 1.4, 2.0, 3.0])
def test_ctrl_c_while_the_graph_starts_stops_it_quietly(ros, delay):
    with NodeProcess("cam_guard.tools.graph_launcher", args=["--set", "camera.device=synthetic"],
                     own_session=True) as graph:
        code, took = ctrl_c_after(graph, delay)
        output = graph.output()
        left = wait_until_gone(session_members(graph.pid), 3)
    assert_quiet(output)
    assert code == 0, output[-3000:]
    assert took < STOP_BOUND_S, slow_stop(took, output)
    assert not left, "processes outlived the graph"


def test_ctrl_c_while_the_graph_streams_stops_it_quietly(probe):
    previews = probe.subscribe(Image, "/preview/image")
    with NodeProcess("cam_guard.tools.graph_launcher", args=["--set", "camera.device=synthetic"],
                     own_session=True) as graph:
        previews.wait_count(5, timeout=60)  # camera, reward and preview all running
        code, took = ctrl_c_after(graph)
        output = graph.output()
        left = wait_until_gone(session_members(graph.pid), 3)
    assert_quiet(output)
    assert code == 0, output[-3000:]
    assert took < STOP_BOUND_S, slow_stop(took, output)
    assert not left


@pytest.mark.parametrize("module", NODES)
@pytest.mark.parametrize("delay", [0.0, 0.3, 1.0])
def test_a_node_interrupted_twice_while_starting_exits_0_quietly(ros, module, delay):
    # ros2 launch: the terminal's Ctrl-C reaches the node, then launch forwards another SIGINT.
    with NodeProcess(module, {"device": "synthetic"} if "camera" in module else None, own_session=True) as node:
        code, took = ctrl_c_after(node, delay)
        output = node.output()
    assert_quiet(output)
    assert code == 0, output[-3000:]
    assert took < STOP_BOUND_S, slow_stop(took, output)


def test_nodes_stop_with_a_terminated_launcher(ros):
    with NodeProcess("cam_guard.tools.graph_launcher", args=["--set", "camera.device=synthetic"],
                     own_session=True) as graph:
        deadline = time.monotonic() + 60
        while len(session_members(graph.pid)) < 6 and time.monotonic() < deadline:  # 3 nodes, 2 workers
            time.sleep(0.1)
        family = session_members(graph.pid)
        code, took = graph.stop(signal.SIGTERM, timeout=STOP_BOUND_S + 5)
        output = graph.output()
    assert code == 0 and took < STOP_BOUND_S, output[-3000:]
    assert not wait_until_gone(family, 3), "nodes outlived a launcher that was asked to stop"
    assert_quiet(output)


def test_a_node_dies_with_the_process_that_ran_it(ros, tmp_path):
    # `ros2 run cam_guard camera_node` killed: the node's parent is gone, nobody would stop it.
    pid_file = tmp_path / "node.pid"
    starter = subprocess.Popen(["bash", "-c", f'"{sys.executable}" -m cam_guard.camera_node --ros-args '
                                f'-p device:=synthetic & echo $! > {pid_file}; wait'], start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while len(session_members(starter.pid)) < 4 and time.monotonic() < deadline:  # bash, node, 2 workers
            time.sleep(0.1)
        family = session_members(starter.pid)
        node = int(pid_file.read_text())
        assert node in family and len(family) >= 4, family
        os.kill(starter.pid, signal.SIGKILL)
        starter.wait(timeout=5)
        assert not wait_until_gone(family, 5), "the node (or its capture workers) outlived its starter"
    finally:
        for pid in session_members(starter.pid):
            os.kill(pid, signal.SIGKILL)
