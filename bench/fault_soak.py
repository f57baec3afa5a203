"""Fault soak: each fault injected N times into one camera node; detection and recovery times.

    python bench/fault_soak.py [--cycles 50] [--stall-timeout 0.5] [--only SUBSTRING]

detect = injection → the camera_state topic says STALLED/RECONNECTING (as a trainer sees it);
recover = source usable again → first frame captured after that instant arrives at a subscriber.
The node's own figures (watchdog: last good frame → stall decided) are printed beside them.
"""

import argparse
import tempfile
import time
from pathlib import Path

import _common  # noqa: F401  (sets the ROS environment first)
import rclpy
from _common import machine, pct, table

from cam_guard.testing.fault_injection import FifoCamera, MjpegFaultServer
from cam_guard.testing.harness import RosProbe, start_camera

PADDED = "padded frames (16-1040 bytes after EOI), new session each cycle"
FAULTS = ("stall (no bytes, connection open)", "connection dropped", "half a frame, then silence",
          "camera vanishes, returns on same address", "read stuck in the kernel (pipe goes quiet)", PADDED)


def soak(name: str, cycles: int, stall_timeout: float) -> list[object]:
    with MjpegFaultServer(640, 480, 30) as server, tempfile.TemporaryDirectory() as tmp:
        port = server.port
        fifo = FifoCamera(Path(tmp) / "camera.mjpg")
        device = str(fifo.path) if name.startswith("read stuck") else server.url
        faults = {
            "read stuck in the kernel (pipe goes quiet)": (fifo.flowing.clear, fifo.flowing.set),
            "stall (no bytes, connection open)": (server.stall, server.resume),
            "connection dropped": (server.drop, None),
            "half a frame, then silence": (server.truncate, server.resume),
            "camera vanishes, returns on same address": (server.stop, lambda: server.start(port=port)),
            PADDED: (server.drop, None),
        }
        if name == PADDED:
            server.pad(16, 1040)
        inject, restore = faults[name]
        ok_detect = ok_recover = 0
        with RosProbe() as probe:
            camera = start_camera(probe, device, stall_timeout=stall_timeout)
            try:
                for _ in range(cycles):
                    try:
                        camera.fault_cycle(inject, restore, detect_timeout=10, recover_timeout=15)
                        ok_detect += 1
                        ok_recover += 1
                    except AssertionError:
                        ok_detect = len(camera.detect_s)
                        if server._server is None:
                            server.start(port=port)
                        server.resume()
                        camera.wait_streaming(timeout=30)
                values = camera.diagnostics()
                camera.node.stop()
            finally:
                camera.node.__exit__(None, None, None)
        fifo.close()
    detect = [d * 1000 for d in camera.detect_s]
    recover = [r * 1000 for r in camera.recover_s]
    node_detect = values["detect_s_last_median_worst"].split("/")
    return [name, cycles, ok_detect, ok_recover, pct(detect, 50), max(detect, default=float("nan")),
            float(node_detect[1]) * 1000, float(node_detect[2]) * 1000, pct(recover, 50),
            max(recover, default=float("nan"))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cycles", type=int, default=50)
    parser.add_argument("--stall-timeout", type=float, default=0.5)
    parser.add_argument("--only", default="", help="run the faults whose name contains this")
    args = parser.parse_args()
    rclpy.init()
    rows = []
    for name in (f for f in FAULTS if args.only in f):
        started = time.monotonic()
        rows.append(soak(name, args.cycles, args.stall_timeout))
        print(rows[-1], f"({time.monotonic() - started:.0f} s)", flush=True)
    rclpy.shutdown()
    print(f"\n{machine()}; MJPEG over HTTP on 127.0.0.1, 640x480 @ 30 fps, stall_timeout {args.stall_timeout} s\n")
    print(table(["fault", "trials", "detected", "recovered", "detect p50 ms", "detect worst ms",
                 "node detect p50 ms", "node detect worst ms", "recover p50 ms", "recover worst ms"], rows))


if __name__ == "__main__":
    main()
