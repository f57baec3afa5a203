"""Two cam_guard cameras in one trainer (issue 10): a bridge helper per camera, or one helper for all topics?

    python bench/lerobot_cameras.py [--seconds 10] [--size 1280x720]

Two camera_nodes (/front, /wrist) on two MJPEG-over-HTTP servers at 30 fps. The trainer (this
process) reads both side by side, as LeRobot's robot does each step: wait for a new front frame,
then a new wrist frame, copy both out. Compared:
- per camera (what CamGuardCamera does; the baseline): each camera object starts its own helper
  process (cam_guard.bridge.helper), one DDS participant and one subscription each;
- shared: one helper process with both subscriptions on one executor, each writing its own ring
  (a prototype built here from the same BridgeHelper class; cam_guard does not ship it).
Measured: frames per second the trainer got per camera, capture → trainer latency (now − the
frame's capture stamp, when the trainer holds the copy), CPU and memory of the helper process(es).
"""

import argparse
import contextlib
import os
import select
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import _common  # noqa: F401  (sets the ROS environment first)
from _common import cpu_seconds, machine, pct, rss_mb, table, tree

from cam_guard.bridge.client import BridgeClient
from cam_guard.common.frame_ring import Frame, FrameRing, ring_path
from cam_guard.testing.fault_injection import MjpegFaultServer
from cam_guard.testing.harness import NodeProcess

CAMERAS = ("front", "wrist")
SHARED_HELPER = textwrap.dedent("""
    import argparse, os, sys
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from cam_guard.bridge.helper import BridgeHelper
    from cam_guard.common.frame_ring import FrameRing
    from cam_guard.ros.runtime import prepare_ros_process
    prepare_ros_process()
    rclpy.init()
    executor = SingleThreadedExecutor()
    for spec in sys.argv[1:]:  # topic=ring=doorbell_fd
        topic, ring, fd = spec.split("=")
        os.set_blocking(int(fd), False)
        args = argparse.Namespace(color="rgb", image_topic=topic, state_topic="", reward_topic="")
        executor.add_node(BridgeHelper(FrameRing.attach(ring, writable=True), int(fd), args))
    executor.spin()
""")


def ring_waiter(ring: FrameRing, doorbell: int) -> Callable[[int, float], Frame | None]:
    """BridgeClient.wait_fresh's loop (without its age limit), for the prototype's rings."""
    def wait_newer(seq: int, timeout_s: float) -> Frame | None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if ring.latest_seq() > seq and (frame := ring.read_latest()) is not None and frame.seq > seq:
                return frame
            if select.select([doorbell], [], [], 0.1)[0]:
                with contextlib.suppress(BlockingIOError):
                    os.read(doorbell, 1 << 16)
        return None
    return wait_newer


class Reader:
    """One camera as the trainer sees it: each call takes the next new frame."""

    def __init__(self, wait_newer: Callable[[int, float], Frame | None]) -> None:
        self.wait_newer, self.seq = wait_newer, 0
        self.latencies_ms: list[float] = []

    def next_frame(self, timeout_s: float = 1.0) -> None:
        frame = self.wait_newer(self.seq, timeout_s)
        if frame is not None:
            self.seq = frame.seq
            self.latencies_ms.append((time.time_ns() - frame.stamp_ns) / 1e6)


def helper_pids() -> list[int]:
    """This process's bridge helper children."""
    return [pid for pid in tree(os.getpid())[1:]
            if b"cam_guard.bridge.helper" in Path(f"/proc/{pid}/cmdline").read_bytes()]


def measure(readers: list[Reader], helper_pids: list[int], seconds: float) -> dict[str, object]:
    for reader in readers:  # first frames: discovery done, rings sized
        reader.next_frame(30.0)
        reader.latencies_ms.clear()
    cpu0, started = cpu_seconds(helper_pids), time.monotonic()
    while time.monotonic() - started < seconds:
        for reader in readers:
            reader.next_frame()
    elapsed = time.monotonic() - started
    cpu = (cpu_seconds(helper_pids) - cpu0) / elapsed
    latencies = [ms for r in readers for ms in r.latencies_ms]
    return {"fps": [len(r.latencies_ms) / elapsed for r in readers], "p50": pct(latencies, 50),
            "p95": pct(latencies, 95), "cores": cpu, "rss": sum(rss_mb(p) for p in helper_pids),
            "processes": len(helper_pids)}


def per_camera(width: int, height: int, seconds: float) -> dict[str, object]:
    clients = [BridgeClient(f"/{name}/image_raw", "rgb", "", "", width, height) for name in CAMERAS]
    for client in clients:
        client.start()
    try:
        return measure([Reader(c.wait_fresh) for c in clients], helper_pids(), seconds)
    finally:
        for client in clients:
            client.stop()


def shared(width: int, height: int, seconds: float) -> dict[str, object]:
    rings, pipes, specs = [], [], []
    for index, name in enumerate(CAMERAS):
        path = ring_path("bench", index)
        rings.append(FrameRing.create(path, width * height * 3))
        read_fd, write_fd = os.pipe()
        os.set_blocking(read_fd, False)
        pipes.append((read_fd, write_fd))
        specs.append(f"/{name}/image_raw={path}={write_fd}")
    helper = subprocess.Popen([sys.executable, "-c", SHARED_HELPER, *specs], pass_fds=[w for _, w in pipes],
                              stdin=subprocess.DEVNULL)
    try:
        for _, write_fd in pipes:
            os.close(write_fd)
        return measure([Reader(ring_waiter(ring, r)) for ring, (r, _) in zip(rings, pipes, strict=True)],
                       [helper.pid], seconds)
    finally:
        helper.terminate()
        helper.wait(timeout=5)
        for ring, (read_fd, _) in zip(rings, pipes, strict=True):
            os.close(read_fd)
            ring.close()
            os.unlink(ring.path)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--size", default="1280x720")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    servers = [MjpegFaultServer(width, height, 30, quality=85, cycle_frames=90) for _ in CAMERAS]
    nodes = [NodeProcess("cam_guard.camera_node", {"device": server.start(), "width": width, "height": height},
                         remaps={"__ns": f"/{name}"}) for server, name in zip(servers, CAMERAS, strict=True)]
    try:
        results = {"per camera (baseline)": per_camera(width, height, args.seconds),
                   "shared (prototype)": shared(width, height, args.seconds)}
    finally:
        for node in nodes:
            node.stop()
            node.__exit__(None, None, None)
        for server in servers:
            server.stop()
    base = results["per camera (baseline)"]
    rows = [[name, r["processes"], " / ".join(f"{f:.1f}" for f in r["fps"]), r["p50"], r["p95"], r["cores"],
             r["cores"] / base["cores"], r["rss"], r["rss"] / base["rss"]] for name, r in results.items()]
    print(f"\n{machine()}; two cameras, {width}x{height} MJPEG @ 30 fps, {args.seconds:.0f} s each, "
          f"load avg {os.getloadavg()[0]:.1f}\n")
    print(table(["helpers", "processes", "fps front / wrist", "capture→trainer p50 ms", "p95 ms", "helper cores",
                 "× baseline", "helper RSS MB", "× baseline"], rows))


if __name__ == "__main__":
    main()
