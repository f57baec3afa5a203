"""A camera on host A, readers on A and on B behind the limited link, measured phase by phase.

Shared by the tests and the benchmarks of issues 16 and 18. `TwoHostRig` starts processes on
either host (`start_node`, `start_recorder`), remembers them, and stops them all on exit (SIGCONT
first: a phase may have stopped one). `measure()` turns the recorders' files into rates and
latencies for a window, with the link's byte rate.
"""

import contextlib
import os
import signal
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cam_guard.testing.harness import NodeProcess
from cam_guard.testing.netns import Host, LinkCounters, TwoHosts
from cam_guard.testing.topic_recorder import WindowStats, read_records, window_stats

MJPEG_PORT = 8090


@dataclass(frozen=True)
class Window:
    start: float  # time.time()
    end: float
    link_before: LinkCounters
    link_after: LinkCounters

    @property
    def link_mb_s(self) -> float:
        """What host A sent over the link, MB/s."""
        return self.link_before.rates_mb_s(self.link_after)[0]


class TwoHostRig(contextlib.AbstractContextManager):
    def __init__(self, domain_id: int, rate: str = "100mbit", env: dict[str, str] | None = None) -> None:
        self.net = TwoHosts(rate=rate)
        self.domain_id = domain_id
        self.env = env or {}
        self._dir = tempfile.TemporaryDirectory(prefix="cam_guard-two-hosts-")
        self.processes: list[NodeProcess] = []

    def __enter__(self) -> "TwoHostRig":
        self.net.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            for proc in reversed(self.processes):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGCONT)
                with contextlib.suppress(AssertionError):
                    proc.stop(timeout=5)
                proc.__exit__()
        finally:
            self.net.__exit__(*exc)
            self._dir.cleanup()

    def path(self, name: str) -> Path:
        return Path(self._dir.name) / name

    def start_node(self, host: Host, module: str, params: dict[str, Any] | None = None, **kwargs: Any) -> NodeProcess:
        env = {**host.ros_env(self.domain_id), **self.env, **kwargs.pop("env", {})}
        proc = NodeProcess(module, params, env=env, popen=host.popen, **kwargs)
        self.processes.append(proc)
        return proc

    def start_mjpeg(self, host: Host, width: int = 1280, height: int = 720, fps: float = 30.0,
                    port: int = MJPEG_PORT) -> str:
        self.start_node(host, "cam_guard.testing.serve_mjpeg",
                        args=["--width", str(width), "--height", str(height), "--fps", str(fps), "--port", str(port)])
        return f"http://127.0.0.1:{port}/stream.mjpg"

    def start_recorder(self, host: Host, name: str, topics: list[str], *options: str) -> NodeProcess:
        """A topic_recorder on `host` writing to `name`.jsonl; topics as 'TYPE:TOPIC'."""
        return self.start_node(host, "cam_guard.testing.topic_recorder",
                               args=[str(self.path(f"{name}.jsonl")), *options, *topics])

    def records(self, name: str) -> list[dict]:
        path = self.path(f"{name}.jsonl")
        return read_records(path) if path.exists() else []

    def wait_for(self, name: str, predicate: Callable[[dict], bool], timeout: float, what: str,
                 count: int = 1) -> None:
        """Until recorder `name` has logged `count` records matching `predicate` (polls its file: the
        recorder is another process, on either host)."""
        deadline = time.monotonic() + timeout
        while sum(1 for r in self.records(name) if predicate(r)) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{name}: no {what} within {timeout} s\n"
                                     + "\n".join(p.output()[-1500:] for p in self.processes))
            time.sleep(0.2)

    def wait_records(self, name: str, topic: str, count: int, timeout: float) -> None:
        self.wait_for(name, lambda r: r["topic"] == topic, timeout, f"{count} messages on {topic}", count)

    def window(self, seconds: float) -> Window:
        """Let `seconds` pass and return the window, with host A's link counters around it."""
        before, start = self.net.a.counters(), time.time()
        time.sleep(seconds)
        return Window(start, time.time(), before, self.net.a.counters())

    def stats(self, name: str, topic: str, window: Window) -> WindowStats:
        return window_stats(self.records(name), topic, window.start, window.end)

    def diagnostic_values(self, name: str, window: Window, key: str) -> set[str | None]:
        """The values `key` had in the diagnostics recorder `name` received during `window`."""
        return {v.get(key) for r in self.records(name) if r["topic"] == "/diagnostics"
                and window.start <= r["t"] < window.end for v in r["status"].values()}

    def published_hz(self, name: str, window: Window, node: str = "/camera", key: str = "frames_published") -> float:
        """Rate at which camera `node` published, from its diagnostics as recorder `name` received them."""
        points = [(r["t"], int(v[key])) for r in self.records(name) if r["topic"] == "/diagnostics"
                  and window.start <= r["t"] < window.end
                  for status, v in r["status"].items() if status.endswith(node) and key in v]
        if len(points) < 2:
            return float("nan")
        return (points[-1][1] - points[0][1]) / (points[-1][0] - points[0][0])
