"""Fault soak: each fault injected N times into one camera node; detection and recovery times.

    python bench/fault_soak.py [--cycles 50] [--stall-timeout 0.5] [--warmup 0] [--interval 1.5]
                               [--only SUBSTRING[,SUBSTRING...]]

detect = injection → the camera_state topic says STALLED/RECONNECTING (as a trainer sees it);
recover = source usable again → first frame captured after that instant arrives at a subscriber.
The node's own figures (watchdog: last good frame → stall decided) are printed beside them; stale =
frames published out of the source's order (an old frame again); stop = Ctrl-C → exit at the end.
HTTP cases use the project's MJPEG server; `uvc:` cases the emulated UVC camera (root: a private /dev).
Cycles start `--interval` s apart, as faults do not come back to back: a fault right after the last
would find the spare worker still starting (interpreter and OpenCV import: 0.3-1 s on a loaded machine).
"""

import argparse
import itertools
import os
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import _common  # noqa: F401  (sets the ROS environment first)
import numpy as np
import rclpy
from _common import machine, pct, table

from cam_guard.capture.synthetic import read_frame_counter
from cam_guard.ros.image_conversion import from_image_msg
from cam_guard.testing.fault_injection import FifoCamera, MjpegFaultServer, scramble_entropy_data
from cam_guard.testing.harness import CameraUnderTest, RosProbe, start_camera
from cam_guard.testing.uvc.camera import EmulatedUvcCamera, synthetic_source
from cam_guard.testing.uvc.device import StreamFormat
from cam_guard.testing.uvc.namespace import DevNamespace

PADDED = "padded frames (16-1040 bytes after EOI), new session each cycle"
HTTP_FAULTS = ("stall (no bytes, connection open)", "connection dropped", "half a frame, then silence",
               "camera vanishes, returns on same address", "read stuck in the kernel (pipe goes quiet)", PADDED)
UVC_FAULTS = ("uvc: no frames (select times out)", "uvc: DQBUF blocked in the driver",
              "uvc: corrupt frames until detected", "uvc: truncated frames until detected",
              "uvc: unplugged, back on the same /dev/videoN", "uvc: unplugged, back as another /dev/videoN",
              "uvc: padded frames (16-1040 zero bytes), new plug-in each cycle")
Action = Callable[[], object]


def run_cycles(name: str, camera: CameraUnderTest, cycles: int, interval: float, inject: Action,
               restore: Action | None, reset: Action) -> list[object]:
    ok_detect = ok_recover = stale = 0
    last_counter = -1
    try:
        for _ in range(cycles):
            started = time.monotonic()
            try:
                camera.fault_cycle(inject, restore, detect_timeout=10, recover_timeout=15)
                ok_detect += 1
                ok_recover += 1
            except AssertionError:
                ok_detect = len(camera.detect_s)
                reset()
                camera.wait_streaming(timeout=30)
            # Frames are checked and dropped per cycle: a soak's worth of raw images would not fit in memory.
            for msg in camera.images.messages:
                counter = read_frame_counter(from_image_msg(msg))
                stale += counter <= last_counter
                last_counter = counter
            camera.images.clear()
            time.sleep(max(0.0, started + interval - time.monotonic()))  # spacing, not a wait for an event
        values = camera.diagnostics()
        code, stop_s = camera.node.stop()
        assert code == 0, camera.node.output()[-2000:]
    finally:
        camera.node.__exit__(None, None, None)
    detect = [d * 1000 for d in camera.detect_s]
    recover = [r * 1000 for r in camera.recover_s]
    node_detect = values["detect_s_last_median_worst"].split("/")
    return [name, cycles, ok_detect, ok_recover, pct(detect, 50), max(detect, default=float("nan")),
            float(node_detect[1]) * 1000, float(node_detect[2]) * 1000, pct(recover, 50),
            max(recover, default=float("nan")), stale, stop_s]


def soak_http(name: str, cycles: int, interval: float, stall_timeout: float) -> list[object]:
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

        def reset() -> None:
            if server._server is None:
                server.start(port=port)
            server.resume()
            fifo.flowing.set()

        with RosProbe() as probe:
            camera = start_camera(probe, device, stall_timeout=stall_timeout)
            row = run_cycles(name, camera, cycles, interval, *faults[name], reset)
        fifo.close()
    return row


class FrameDamage:
    """Frames of the emulated camera, damaged while a mode is set (corrupt, truncated, padded)."""

    def __init__(self) -> None:
        self.mode = ""
        self._draw = synthetic_source()
        self._rng = np.random.default_rng(0)
        self._lock = threading.Lock()

    def __call__(self, number: int, fmt: StreamFormat) -> bytes:
        jpeg = self._draw(number, fmt)
        with self._lock:
            mode = self.mode
        if mode == "corrupt":
            return scramble_entropy_data(jpeg, self._rng)
        if mode == "truncated":
            return jpeg[: len(jpeg) * 2 // 3]
        if mode == "padded":
            return jpeg + bytes(16 + number * 7919 % 1025)
        return jpeg

    def set(self, mode: str) -> Action:
        def switch() -> None:
            with self._lock:
                self.mode = mode
        return switch


def soak_uvc(name: str, cycles: int, interval: float, stall_timeout: float, warmup: float) -> list[object]:
    with DevNamespace() as ns, EmulatedUvcCamera(ns) as cam, RosProbe() as probe:
        frames = FrameDamage()
        cam.play(frames)
        other = itertools.cycle([4, 0])  # /dev/video4, /dev/video0, ... (each with its metadata node)
        faults: dict[str, tuple[Action, Action | None]] = {
            "uvc: no frames (select times out)": (cam.stall, cam.resume),
            "uvc: DQBUF blocked in the driver": (cam.hang_dqbuf, None),
            "uvc: corrupt frames until detected": (frames.set("corrupt"), frames.set("")),
            "uvc: truncated frames until detected": (frames.set("truncated"), frames.set("")),
            "uvc: unplugged, back on the same /dev/videoN": (cam.unplug, lambda: cam.replug(0)),
            "uvc: unplugged, back as another /dev/videoN": (cam.unplug, lambda: cam.replug(next(other))),
            UVC_FAULTS[-1]: (cam.unplug, lambda: cam.replug(0)),
        }
        if name == UVC_FAULTS[-1]:
            frames.set("padded")()

        def reset() -> None:
            cam.resume()
            if cam.node_path is None:
                cam.replug(0)
            if name != UVC_FAULTS[-1]:
                frames.set("")()

        camera = start_camera(probe, cam.by_id_path, popen=cam.popen, stall_timeout=stall_timeout, warmup=warmup)
        return run_cycles(name, camera, cycles, interval, *faults[name], reset)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cycles", type=int, default=50)
    parser.add_argument("--stall-timeout", type=float, default=0.5)
    parser.add_argument("--warmup", type=float, default=0.0, help="camera_node's warmup for the uvc cases")
    parser.add_argument("--interval", type=float, default=1.5, help="seconds from one cycle's start to the next")
    parser.add_argument("--only", default="", help="run the faults whose name contains one of these (commas)")
    args = parser.parse_args()
    rclpy.init()
    rows = []
    for name in (f for f in HTTP_FAULTS + UVC_FAULTS if any(part in f for part in args.only.split(","))):
        if name.startswith("uvc:") and os.geteuid() != 0:
            print(f"skipped (needs root for a private /dev): {name}")
            continue
        started = time.monotonic()
        rows.append(soak_uvc(name, args.cycles, args.interval, args.stall_timeout, args.warmup)
                    if name.startswith("uvc:") else soak_http(name, args.cycles, args.interval, args.stall_timeout))
        print(rows[-1], f"({time.monotonic() - started:.0f} s)", flush=True)
    rclpy.shutdown()
    print(f"\n{machine()}; HTTP: MJPEG on 127.0.0.1, 640x480 @ 30 fps; uvc: emulated camera, MJPG 640x480 @ 30 fps,"
          f" warmup {args.warmup} s; stall_timeout {args.stall_timeout} s; cycles {args.interval} s apart\n")
    print(table(["fault", "trials", "detected", "recovered", "detect p50 ms", "detect worst ms",
                 "node detect p50 ms", "node detect worst ms", "recover p50 ms", "recover worst ms", "stale",
                 "stop s"], rows))


if __name__ == "__main__":
    main()
