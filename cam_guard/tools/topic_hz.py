"""cam_guard_hz: `ros2 topic hz` for image topics, for machines without ros2cli.

    cam_guard_hz [/image_raw] [--duration S]

Prints once a second: messages per second, and the age of the newest frame (now − header.stamp).
Subscribes best effort, so it matches any publisher.
"""

import argparse
import time

import rclpy
from sensor_msgs.msg import CompressedImage, Image

from cam_guard.common.rate_meter import RateMeter
from cam_guard.ros.image_conversion import stamp_to_ns
from cam_guard.ros.runtime import spin_until_shutdown
from cam_guard.ros.transport import newest_only_subscription_qos


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="cam_guard_hz", description=__doc__.split("\n\n")[0])
    parser.add_argument("topic", nargs="?", default="/image_raw")
    parser.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    args = parser.parse_args(argv)
    msg_type = CompressedImage if args.topic.endswith("/compressed") else Image
    rclpy.init()
    node = rclpy.create_node("cam_guard_hz")
    rate = RateMeter(window_s=2.0)
    newest: list = [None]

    def on_message(msg: Image | CompressedImage) -> None:
        rate.add((time.time_ns() - stamp_to_ns(msg.header.stamp)) / 1e6)
        newest[0] = msg

    def report() -> None:
        msg = newest[0]
        if msg is None:
            print(f"waiting for {args.topic} ...", flush=True)
            return
        size = f"{msg.width}x{msg.height} {msg.encoding}" if isinstance(msg, Image) else msg.format
        print(f"{args.topic}: {rate.rate_hz():.1f} Hz, frame age p50 {rate.percentile(50):.1f} ms, {size}",
              flush=True)

    node.create_subscription(msg_type, args.topic, on_message, newest_only_subscription_qos())
    node.create_timer(1.0, report)
    deadline = None if args.duration is None else time.monotonic() + args.duration
    try:
        spin_until_shutdown(node, lambda: deadline is not None and time.monotonic() >= deadline)
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
