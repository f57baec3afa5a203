"""CPU of camera_node with and without a subscriber to raw images (issue 14: decode only when needed).

    python bench/decode_on_demand.py [--seconds 10] [--width 1280 --height 720]

MJPEG over HTTP at 30 fps (pre-encoded frames) → camera_node (node + capture worker, CPU of the whole
process tree). Rows: a subscriber to image_raw (frames decoded and published as Image), and one to
image_raw/compressed only (frames checked at 1/8 scale, not decoded; no Image built). Baseline, in the
same run: a bare cv2.VideoCapture loop reading and decoding the same stream in this process.
"""

import argparse

import _common  # noqa: F401  (sets the ROS environment first)
import rclpy
from _common import machine, table
from camera_throughput import bare_opencv, camera_node

from cam_guard.testing.fault_injection import MjpegFaultServer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    args = parser.parse_args()
    rclpy.init()
    with MjpegFaultServer(args.width, args.height, 30, quality=85, cycle_frames=60) as server:
        base_fps, base_cores = bare_opencv(server.url, args.seconds)
        raw_fps, raw_cores = camera_node(server.url, args.width, args.height, args.seconds)
        jpeg_fps, jpeg_cores = camera_node(server.url, args.width, args.height, args.seconds, "/image_raw/compressed")
    rclpy.shutdown()
    rows = [["bare cv2 read + decode (baseline)", base_fps, base_cores, 1.0],
            ["camera_node, image_raw subscriber", raw_fps, raw_cores, raw_cores / base_cores],
            ["camera_node, compressed subscriber only", jpeg_fps, jpeg_cores, jpeg_cores / base_cores]]
    print(f"\n{machine()}; MJPEG over HTTP at 30 fps, {args.width}x{args.height}, {args.seconds:.0f} s per row\n")
    print(table(["reader", "fps", "cores", "× baseline"], rows))
    print(f"\ncompressed-only / raw: {jpeg_cores / raw_cores:.2f}")


if __name__ == "__main__":
    main()
