"""Camera node throughput and CPU from an MJPEG source, per resolution (issue 6).

    python bench/camera_throughput.py [--seconds 10]

The camera node (and its capture worker) reads an MJPEG-over-HTTP stream at 30 fps; a subscriber
in this process counts frames. CPU is the node's whole process tree (node + worker), in cores.
The baseline is the same stream read and decoded by a bare cv2.VideoCapture loop in this process.
"""

import argparse
import time

import _common  # noqa: F401  (sets the ROS environment first)
import cv2
import rclpy
from _common import cpu_seconds, machine, table, tree
from sensor_msgs.msg import CompressedImage, Image

from cam_guard.ros.transport import image_qos
from cam_guard.testing.fault_injection import MjpegFaultServer
from cam_guard.testing.harness import NodeProcess, RosProbe

SIZES = ((640, 480), (1280, 720), (1920, 1080))


def bare_opencv(url: str, seconds: float) -> tuple[float, float]:
    """Frames/s and CPU cores of the simplest in-process reader of the same stream."""
    cap = cv2.VideoCapture(url, cv2.CAP_FFMPEG)
    cap.read()
    frames, started, cpu0 = 0, time.monotonic(), time.process_time()
    while time.monotonic() - started < seconds:
        ok, _ = cap.read()
        frames += ok
    elapsed = time.monotonic() - started
    cap.release()
    return frames / elapsed, (time.process_time() - cpu0) / elapsed


def camera_node(url: str, width: int, height: int, seconds: float, topic: str = "/image_raw") -> tuple[float, float]:
    """Frames/s a subscriber to `topic` gets, and the node tree's CPU in cores."""
    with RosProbe() as probe, NodeProcess("cam_guard.camera_node", {"device": url, "width": width,
                                                                     "height": height}) as node:
        images = probe.subscribe(Image if topic == "/image_raw" else CompressedImage, topic, image_qos("reliable"))
        images.wait_count(30, timeout=30)  # past the start, and past the switch to decoding or not
        pids = tree(node.pid)
        count0, cpu0, started = len(images.items), cpu_seconds(pids), time.monotonic()
        time.sleep(seconds)  # the measurement window
        elapsed = time.monotonic() - started
        rate = (len(images.items) - count0) / elapsed
        cores = (cpu_seconds(pids) - cpu0) / elapsed
        node.stop()
    return rate, cores


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    rclpy.init()
    rows = []
    for width, height in SIZES:
        # Pre-encoded frames: serving costs this process little, so it measures the reader.
        with MjpegFaultServer(width, height, 30, quality=85, cycle_frames=60) as server:
            base_fps, base_cores = bare_opencv(server.url, args.seconds)
            fps, cores = camera_node(server.url, width, height, args.seconds)
        rows.append([f"{width}x{height}", fps, cores, base_fps, base_cores, cores / base_cores if base_cores else 0.0])
        print(rows[-1], flush=True)
    rclpy.shutdown()
    print(f"\n{machine()}; MJPEG over HTTP at 30 fps, {args.seconds:.0f} s per row\n")
    print(table(["size", "camera_node fps", "camera_node cores", "bare cv2 fps", "bare cv2 cores",
                 "cores ratio"], rows))


if __name__ == "__main__":
    main()
