"""Real node processes and an in-process subscriber node, for the tests and the benchmarks.

The caller sets ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST and ROS_DOMAIN_ID before rclpy.init().
"""

import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rcl_interfaces.msg import SetParametersResult
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter, parameter_value_to_python
from rclpy.parameter_client import AsyncParameterClient
from rclpy.qos import QoSProfile
from rclpy.task import Future
from sensor_msgs.msg import Image
from std_msgs.msg import String

from cam_guard.ros.image_conversion import stamp_to_ns
from cam_guard.ros.transport import latched_qos, newest_only_subscription_qos

CAMERA_DOWN = ("STALLED", "RECONNECTING")


def ros_param(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ",".join(f"'{v}'" if isinstance(v, str) else str(v) for v in value) + "]"
    return str(value)


class NodeProcess:
    """A cam_guard executable in its own process, as `ros2 run` would start it."""

    def __init__(self, module: str, params: dict[str, Any] | None = None, *,
                 remaps: dict[str, str] | None = None, env: dict[str, str] | None = None,
                 args: list[str] | None = None, own_session: bool = False,
                 popen: Callable[..., subprocess.Popen] = subprocess.Popen) -> None:
        """`own_session`: started as `setsid` would, so that `interrupt_group` is a terminal's Ctrl-C.
        `popen` starts the command: e.g. an emulated camera's, to run it where the camera is."""
        self.module = module
        # Stays open for the process's lifetime; closed and removed in __exit__.
        self._log = tempfile.NamedTemporaryFile(  # noqa: SIM115
            prefix=f"{module.rsplit('.', 1)[-1]}-", suffix=".log", delete=False)
        cmd = [sys.executable, "-m", module] + (args or [])
        if params or remaps:
            cmd.append("--ros-args")
            for key, value in (params or {}).items():
                cmd += ["-p", f"{key}:={ros_param(value)}"]
            for src, dst in (remaps or {}).items():
                cmd += ["-r", f"{src}:={dst}"]
        self.cmd = cmd
        self.proc = popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
                          start_new_session=own_session)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        with open(self._log.name, errors="replace") as f:
            return f.read()

    def interrupt_group(self) -> None:
        """Ctrl-C in a terminal: SIGINT to every process of the group (`kill -INT -- -PGID`)."""
        os.killpg(self.proc.pid, signal.SIGINT)

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout=timeout)

    def stop(self, sig: int = signal.SIGINT, timeout: float = 5.0) -> tuple[int, float]:
        """Send `sig`, wait for the exit; returns (exit code, seconds it took). Kills on timeout."""
        start = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
            raise AssertionError(f"{self.module} did not exit within {timeout} s of signal {sig}:\n"
                                 + self.output()[-3000:]) from None
        return code, time.monotonic() - start

    def __enter__(self) -> "NodeProcess":
        return self

    def __exit__(self, exc_type: type[BaseException] | None = None, *_exc: object) -> None:
        """Kill the process if it still runs and remove its log; safe to call more than once. When the
        test failed inside the `with`, the process's output goes to stderr (pytest shows it with the failure)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)
        if exc_type is not None and not self._log.closed:
            print(f"--- {self.module} (pid {self.proc.pid}, exit {self.proc.returncode}), its output:\n"
                  f"{self.output()[-4000:]}", file=sys.stderr)
        if not self._log.closed:
            self._log.close()
            os.unlink(self._log.name)


class Recorder:
    """Messages of one subscription, with their arrival time (time.time())."""

    def __init__(self) -> None:
        self.items: list[tuple[float, Any]] = []
        self._cond = threading.Condition()

    def __call__(self, msg: Any) -> None:
        with self._cond:
            self.items.append((time.time(), msg))
            self._cond.notify_all()

    @property
    def messages(self) -> list[Any]:
        with self._cond:
            return [m for _, m in self.items]

    def wait_for(self, predicate: Callable[[list[Any]], bool], timeout: float, what: str = "") -> list[Any]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate([m for _, m in self.items]):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}; "
                                         f"{len(self.items)} message(s) so far")
                self._cond.wait(remaining)
            return [m for _, m in self.items]

    def wait_count(self, count: int, timeout: float) -> list[Any]:
        return self.wait_for(lambda ms: len(ms) >= count, timeout, f"{count} messages")

    def clear(self) -> None:
        with self._cond:
            self.items.clear()


class RosProbe:
    """A subscriber node in the test process, spun in a background thread."""

    def __init__(self) -> None:
        self.node = rclpy.create_node(f"probe_{uuid.uuid4().hex[:8]}")
        self._executor = SingleThreadedExecutor()
        self._executor.add_node(self.node)
        self._thread = threading.Thread(target=self._executor.spin, daemon=True)
        self._thread.start()

    def subscribe(self, msg_type: type, topic: str, qos: QoSProfile | None = None) -> Recorder:
        recorder = Recorder()
        self.node.create_subscription(msg_type, topic, recorder, qos or newest_only_subscription_qos())
        return recorder

    def close(self) -> None:
        self._executor.shutdown(timeout_sec=2)
        self._thread.join(timeout=2)
        self.node.destroy_node()

    def __enter__(self) -> "RosProbe":
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def wait_future(future: Future, timeout: float, what: str) -> Any:
    """The result of a future that the probe's executor completes (bounded wait)."""
    done = threading.Event()
    future.add_done_callback(lambda _: done.set())
    if not done.wait(timeout):
        raise AssertionError(f"no answer to {what} within {timeout} s")
    return future.result()


class RemoteParameters:
    """A node's parameters through its parameter services, as `ros2 param` and rqt_reconfigure use them."""

    def __init__(self, probe: RosProbe, node_name: str, timeout: float = 20) -> None:
        self._client = AsyncParameterClient(probe.node, node_name)
        self._node_name = node_name
        if not self._client.wait_for_services(timeout_sec=timeout):
            raise AssertionError(f"{node_name} offers no parameter services after {timeout} s")

    def set(self, timeout: float = 10, **values: Any) -> list[SetParametersResult]:
        """One SetParameters request (what `ros2 param set` sends), in keyword order."""
        params = [Parameter(name.replace("__", "."), value=value) for name, value in values.items()]
        return wait_future(self._client.set_parameters(params), timeout, f"set_parameters on {self._node_name}").results

    def get(self, *names: str, timeout: float = 10) -> list[Any]:
        response = wait_future(self._client.get_parameters(list(names)), timeout, "get_parameters")
        return [parameter_value_to_python(value) for value in response.values]

    def names(self, timeout: float = 10) -> list[str]:
        return wait_future(self._client.list_parameters(), timeout, "list_parameters").result.names


class RemoteLifecycle:
    """A managed node's lifecycle services, as `ros2 lifecycle set` uses them."""

    def __init__(self, probe: RosProbe, node_name: str, timeout: float = 20) -> None:
        self._change = probe.node.create_client(ChangeState, f"{node_name}/change_state")
        self._get = probe.node.create_client(GetState, f"{node_name}/get_state")
        for client in (self._change, self._get):
            if not client.wait_for_service(timeout_sec=timeout):
                raise AssertionError(f"{node_name} offers no lifecycle services after {timeout} s")

    def transition(self, label: str, timeout: float = 10) -> bool:
        """'configure', 'activate', 'deactivate', 'cleanup' or 'shutdown'; True if it succeeded."""
        request = ChangeState.Request(transition=Transition(label=label))
        return wait_future(self._change.call_async(request), timeout, f"lifecycle {label}").success

    def state(self, timeout: float = 10) -> str:
        return wait_future(self._get.call_async(GetState.Request()), timeout, "get_state").current_state.label


def process_alive(pid: int) -> bool:
    """True if `pid` runs and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def diagnostic_values(status: Any) -> dict[str, str]:
    return {kv.key: kv.value for kv in status.values}


def latest_camera_status(diag_recorder: Recorder) -> Any | None:
    for array in reversed(diag_recorder.messages):
        for status in array.status:
            if status.name.startswith("cam_guard: ") and "camera" in status.name:
                return status
    return None


@dataclass
class CameraUnderTest:
    """A camera_node process and what a subscriber sees of it: frames, states, diagnostics."""

    images: Recorder
    states: Recorder
    diags: Recorder
    node: NodeProcess
    detect_s: list[float] = field(default_factory=list)
    recover_s: list[float] = field(default_factory=list)

    def wait_streaming(self, timeout: float = 20) -> None:
        self.states.wait_for(lambda ms: ms and ms[-1].data == "STREAMING", timeout, "STREAMING")
        seen = len(self.images.items)
        self.images.wait_count(seen + 3, timeout)

    def state_change_after(self, since: float, states: tuple[str, ...], timeout: float) -> float:
        """Seconds from `since` until a state in `states` was received."""
        def reached(_: list) -> bool:
            return any(t >= since and m.data in states for t, m in self.states.items)
        self.states.wait_for(reached, timeout, f"state in {states}")
        return min(t for t, m in self.states.items if t >= since and m.data in states) - since

    def first_frame_after(self, since: float, timeout: float) -> float:
        """Seconds from `since` until the first frame captured after `since` arrived."""
        def fresh(_: list) -> bool:
            return any(stamp_to_ns(m.header.stamp) / 1e9 >= since for _, m in self.images.items)
        self.images.wait_for(fresh, timeout, "a frame captured after the source returned")
        return min(t for t, m in self.images.items if stamp_to_ns(m.header.stamp) / 1e9 >= since) - since

    def fault_cycle(self, inject: Callable[[], object], restore: Callable[[], object] | None = None,
                    detect_timeout: float = 10.0, recover_timeout: float = 10.0) -> None:
        """Inject a fault, expect detection, restore, expect recovery; record both times."""
        t_fault = time.time()
        inject()
        self.detect_s.append(self.state_change_after(t_fault, CAMERA_DOWN, detect_timeout))
        t_back = time.time()
        if restore is not None:
            restore()
        self.recover_s.append(self.first_frame_after(t_back, recover_timeout))
        self.states.wait_for(lambda ms: ms[-1].data == "STREAMING", 5, "STREAMING again")

    def diagnostics(self) -> dict[str, str]:
        t = time.time()
        self.diags.wait_for(lambda _: any(ts > t for ts, _m in self.diags.items), 5, "fresh diagnostics")
        return diagnostic_values(latest_camera_status(self.diags))


def start_camera(probe: RosProbe, device: str, *, popen: Callable[..., subprocess.Popen] = subprocess.Popen,
                 **params: Any) -> CameraUnderTest:
    """A camera_node on `device` (started by `popen`), watched by `probe`, once it streams."""
    images = probe.subscribe(Image, "/image_raw")
    states = probe.subscribe(String, "/camera_state", latched_qos())
    diags = probe.subscribe(DiagnosticArray, "/diagnostics")
    node = NodeProcess("cam_guard.camera_node", {"device": device, **params}, popen=popen)
    camera = CameraUnderTest(images, states, diags, node)
    try:
        camera.wait_streaming()
    except BaseException:
        # Discovery or the node? What the probe sees of the graph, and the node's own output.
        print(f"the probe sees nodes {probe.node.get_node_names_and_namespaces()} in ROS domain "
              f"{os.environ.get('ROS_DOMAIN_ID')}", file=sys.stderr)
        node.__exit__(*sys.exc_info())  # a camera that never streamed must not outlive the caller
        raise
    return camera


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (for a node's web_port)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
