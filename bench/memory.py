"""Memory (RSS) of every graph process over a long run: it must not grow (issue 6).

    python bench/memory.py [--minutes 10] [--every 30]

Runs hilserl_graph on an MJPEG source at 640x480/30 fps with a subscriber on the preview, and
samples the RSS of the camera node, its capture worker, the reward and preview nodes.
"""

import argparse
import time
from pathlib import Path

import _common  # noqa: F401  (sets the ROS environment first)
import rclpy
from _common import machine, rss_mb, table, tree
from sensor_msgs.msg import Image

from cam_guard.testing.fault_injection import MjpegFaultServer
from cam_guard.testing.harness import NodeProcess, RosProbe

ROLES = {"camera_node": "camera_node", "capture_worker": "capture worker", "reward_node": "reward_node",
         "preview_node": "preview_node"}


def roles(graph_pid: int) -> dict[str, int]:
    found = {}
    for pid in tree(graph_pid):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        for key, role in ROLES.items():
            if f"cam_guard.{key}" in cmdline and role not in found:
                found[role] = pid
    return found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--every", type=float, default=30.0)
    args = parser.parse_args()
    rclpy.init()
    samples: dict[str, list[tuple[float, float]]] = {}
    with MjpegFaultServer(640, 480, 30, cycle_frames=120) as server, RosProbe() as probe, \
            NodeProcess("cam_guard.tools.graph_launcher", args=["--set", f"camera.device={server.url}"]) as graph:
        previews = probe.subscribe(Image, "/preview/image")
        previews.wait_count(10, timeout=60)
        started = time.monotonic()
        while True:
            elapsed = time.monotonic() - started
            pids = roles(graph.pid)
            for role, pid in pids.items():
                samples.setdefault(role, []).append((elapsed / 60, rss_mb(pid)))
            print(f"{elapsed / 60:5.1f} min " + "  ".join(f"{r} {rss_mb(p):.1f} MB" for r, p in pids.items()),
                  flush=True)
            previews.clear()  # this process must not grow either
            if elapsed >= args.minutes * 60:
                break
            time.sleep(args.every)  # sampling period
        graph.stop()
    rclpy.shutdown()
    rows = []
    for role, values in samples.items():
        first_min = [v for t, v in values if t >= 1.0] or [v for _, v in values]
        rows.append([role, values[0][1], first_min[0], values[-1][1], max(v for _, v in values),
                     values[-1][1] - first_min[0]])
    print(f"\n{machine()}; hilserl_graph on MJPEG 640x480 @ 30 fps for {args.minutes:.0f} min\n")
    print(table(["process", "RSS at start MB", "RSS at 1 min MB", "RSS at end MB", "max MB",
                 "growth after 1 min MB"], rows))


if __name__ == "__main__":
    main()
