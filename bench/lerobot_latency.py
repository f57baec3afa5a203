"""Wire → frame in the trainer's hands: the LeRobot bridge against reading the camera in-process.

    python bench/lerobot_latency.py [--seconds 10] [--size 640x480]

Both paths read the same MJPEG-over-HTTP stream at 30 fps. Latency is measured from the moment
the server wrote a frame (matched by the number drawn into its pixels) to the moment the trainer
process holds it as a numpy array:
- baseline: cv2.VideoCapture.read() in the trainer process (LeRobot's OpenCVCamera approach);
- bridge: camera_node → Image over DDS → bridge helper → shared memory → the same path
  CamGuardCamera.async_read() takes (BridgeClient.wait_fresh).
"""

import argparse
import time

import _common  # noqa: F401  (sets the ROS environment first)
import cv2
from _common import machine, pct, table

from cam_guard.bridge.client import BridgeClient
from cam_guard.capture.synthetic import read_frame_counter
from cam_guard.testing.fault_injection import MjpegFaultServer
from cam_guard.testing.harness import NodeProcess


def in_process(server: MjpegFaultServer, seconds: float) -> list[float]:
    cap = cv2.VideoCapture(server.url, cv2.CAP_FFMPEG)
    cap.read()
    latencies = []
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        ok, frame = cap.read()
        now = time.time()
        if ok and (sent := server.sent_at.get(read_frame_counter(frame))) is not None:
            latencies.append((now - sent) * 1000)
    cap.release()
    return latencies


def bridge(server: MjpegFaultServer, width: int, height: int, seconds: float) -> list[float]:
    latencies = []
    with NodeProcess("cam_guard.camera_node", {"device": server.url, "width": width, "height": height}) as node:
        client = BridgeClient("/image_raw", "rgb", "/camera_state", "", width, height)
        client.start()
        try:
            frame = client.wait_fresh(0, 30)
            assert frame is not None, "no frame through the bridge"
            started = time.monotonic()
            while time.monotonic() - started < seconds:
                frame = client.wait_fresh(frame.seq, 1.0) or frame
                now = time.time()
                if (sent := server.sent_at.get(read_frame_counter(frame.image))) is not None:
                    latencies.append((now - sent) * 1000)
        finally:
            client.stop()
            node.stop()
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--size", default="640x480")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    with MjpegFaultServer(width, height, 30) as server:
        base = in_process(server, args.seconds)
        via_bridge = bridge(server, width, height, args.seconds)
    rows = [["in-process cv2.VideoCapture (baseline)", len(base), pct(base, 50), pct(base, 95), pct(base, 99), 1.0],
            ["cam_guard bridge (async_read path)", len(via_bridge), pct(via_bridge, 50), pct(via_bridge, 95),
             pct(via_bridge, 99), pct(via_bridge, 50) / pct(base, 50)]]
    print(f"\n{machine()}; MJPEG {width}x{height} @ 30 fps over HTTP on 127.0.0.1, {args.seconds:.0f} s each\n")
    print(table(["path", "frames", "p50 ms", "p95 ms", "p99 ms", "p50 × baseline"], rows))


if __name__ == "__main__":
    main()
