"""What a camera whose source is gone costs while it retries (issue 10), against the same camera streaming.

    python bench/dead_camera.py [--seconds 20] [--size 320x240]

One camera_node at a time: first on a live MJPEG-over-HTTP server (the baseline), then on the same
URL once nobody listens there (every open: connection refused, then the 1 s back-off). Over the
window: CPU of the node and every capture worker it started, reaped ones included (the node's
children times), and how many worker processes it started (the tree sampled every 50 ms).
"""

import argparse
import os
import time
from pathlib import Path

import _common  # noqa: F401  (sets the ROS environment first)
from _common import cpu_seconds, machine, table, tree

from cam_guard.testing.fault_injection import MjpegFaultServer
from cam_guard.testing.harness import NodeProcess

_TICK = os.sysconf("SC_CLK_TCK")
WORKER = "cam_guard.capture.worker"


def reaped_children_cpu(pid: int) -> float:
    """CPU seconds of `pid`'s children it has waited for (cutime + cstime)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[13]) + int(fields[14])) / _TICK


def workers(root: int) -> set[int]:
    found = set()
    for pid in tree(root):
        try:
            if WORKER in Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode():
                found.add(pid)
        except OSError:
            continue
    return found


def measure(url: str, width: int, height: int, seconds: float) -> dict[str, float]:
    with NodeProcess("cam_guard.camera_node", {"device": url, "width": width, "height": height}) as node:
        time.sleep(4.0)  # past start-up: rclpy imported, the first open done (or failed)
        load_before = os.getloadavg()[0]
        start = time.monotonic()
        cpu0 = cpu_seconds(tree(node.pid)) + reaped_children_cpu(node.pid)
        seen = workers(node.pid)
        before = set(seen)
        while time.monotonic() - start < seconds:
            seen |= workers(node.pid)
            time.sleep(0.05)
        cpu1 = cpu_seconds(tree(node.pid)) + reaped_children_cpu(node.pid)
        elapsed = time.monotonic() - start
        node.stop(timeout=10)
    return {"cores": (cpu1 - cpu0) / elapsed, "started": len(seen - before),
            "load": (load_before + os.getloadavg()[0]) / 2}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--size", default="320x240")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    with MjpegFaultServer(width, height, 30, cycle_frames=60) as server:
        url = server.url
        streaming = measure(url, width, height, args.seconds)
    gone = measure(url, width, height, args.seconds)  # the server is stopped: connection refused
    rows = [[name, r["cores"], r["cores"] / streaming["cores"], r["started"], r["load"]]
            for name, r in (("streaming", streaming), ("source gone", gone))]
    print(machine())
    print(table(["camera", "cores", "x streaming", f"workers started in {args.seconds:.0f} s", "load avg"], rows))


if __name__ == "__main__":
    main()
