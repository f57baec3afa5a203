"""Issue 7's table for cam_guard's own camera node: delivery and latency of raw and compressed images
between processes, with Fast DDS defaults ("before") and with the shipped profile ("after").

    python bench/transport.py [--seconds 6]

The subscriber is this process, with Fast DDS defaults (as an rqt user would have it). Delivery
counts frames by the number drawn into each frame, so nothing published can go unnoticed.
"""

import argparse
import time

import _common  # noqa: F401  (sets the ROS environment first)
import rclpy
from _common import machine, pct, table
from sensor_msgs.msg import CompressedImage, Image

from cam_guard.capture.synthetic import read_frame_counter
from cam_guard.ros.image_conversion import from_compressed_msg, from_image_msg, stamp_to_ns
from cam_guard.ros.transport import image_qos
from cam_guard.testing.fault_injection import MjpegFaultServer
from cam_guard.testing.harness import NodeProcess, RosProbe


def measure(width: int, height: int, qos: str, profile: bool, compressed: bool, seconds: float) -> list[object]:
    env = {} if profile else {"CAM_GUARD_FASTDDS_PROFILE": "off"}
    server = MjpegFaultServer(width, height, 30) if compressed else None
    device = server.start() if server else "synthetic"
    topic, msg_type = ("/image_raw/compressed", CompressedImage) if compressed else ("/image_raw", Image)
    with RosProbe() as probe, NodeProcess("cam_guard.camera_node", {
            "device": device, "width": width, "height": height, "qos": qos}, env=env) as node:
        received = probe.subscribe(msg_type, topic, image_qos(qos))
        deadline = time.monotonic() + 15
        while not received.items and time.monotonic() < deadline:
            time.sleep(0.05)
        received.clear()
        time.sleep(seconds)  # the measurement window itself
        items = list(received.items)
        node.stop()
    if server:
        server.stop()
    if not items:
        return [f"{width}x{height}", "CompressedImage" if compressed else "Image bgr8", qos,
                "shipped" if profile else "Fast DDS defaults", "0 (0%)", "-", "-"]
    decode = (lambda m: from_compressed_msg(m)) if compressed else (lambda m: from_image_msg(m))
    counters = sorted({read_frame_counter(decode(m)) for _, m in items})
    expected = counters[-1] - counters[0] + 1
    latency = [(t - stamp_to_ns(m.header.stamp) / 1e9) * 1000 for t, m in items]
    return [f"{width}x{height}", "CompressedImage" if compressed else "Image bgr8", qos,
            "shipped" if profile else "Fast DDS defaults",
            f"{len(counters)} of {expected} ({100 * len(counters) / expected:.0f}%)",
            pct(latency, 50), pct(latency, 95)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=6.0)
    args = parser.parse_args()
    rclpy.init()
    rows = []
    for width, height in ((640, 480), (1280, 720)):
        for qos in ("sensor_data", "reliable"):
            for profile in (False, True):
                rows.append(measure(width, height, qos, profile, False, args.seconds))
                print(rows[-1], flush=True)
        rows.append(measure(width, height, "reliable", True, True, args.seconds))
        print(rows[-1], flush=True)
    rclpy.shutdown()
    print(f"\n{machine()}; camera_node at 30 fps, {args.seconds:.0f} s per row; subscriber in another process\n")
    print(table(["size", "payload", "qos", "Fast DDS profile", "delivered", "p50 ms", "p95 ms"], rows))


if __name__ == "__main__":
    main()
