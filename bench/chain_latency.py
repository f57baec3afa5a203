"""Capture → reward probability → overlay drawn: latency and drops of the three-process chain,
against LeRobot's in-process approach (same MJPEG frames, same classifier, same overlay, one loop).

    python bench/chain_latency.py [--seconds 10]

Chain latency = arrival of the overlay frame at a subscriber − its capture stamp (the preview keeps
the source stamp). In-process latency = overlay drawn − frame read, in one loop doing
read → decode → classify → draw. Drops = frame numbers (drawn into the pixels, intact under the
overlay) missing from the overlays received within the window.
"""

import argparse
import time

import _common  # noqa: F401  (sets the ROS environment first)
import cv2
import rclpy
from _common import machine, pct, table
from geometry_msgs.msg import Vector3Stamped
from sensor_msgs.msg import Image

from cam_guard.capture.synthetic import read_frame_counter
from cam_guard.preview.overlay import OverlayInfo, draw_overlay
from cam_guard.reward.backends import ColorRuleClassifier
from cam_guard.ros.image_conversion import from_image_msg, stamp_to_ns
from cam_guard.testing.fault_injection import MjpegFaultServer
from cam_guard.testing.harness import NodeProcess, RosProbe


def in_process(url: str, seconds: float) -> tuple[list[float], float]:
    classifier = ColorRuleClassifier()
    cap = cv2.VideoCapture(url, cv2.CAP_FFMPEG)
    cap.read()
    latencies = []
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        ok, frame = cap.read()
        read_at = time.perf_counter()
        if not ok:
            continue
        probability = classifier.predict([cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)])
        draw_overlay(frame, OverlayInfo(probability, 0.5, "STREAMING", 0.0, 30.0))
        latencies.append((time.perf_counter() - read_at) * 1000)
    cap.release()
    return latencies, 0.0


def chain(url: str, width: int, height: int, seconds: float) -> tuple[list[float], list[float], float]:
    with RosProbe() as probe, \
            NodeProcess("cam_guard.camera_node", {"device": url, "width": width, "height": height}) as camera, \
            NodeProcess("cam_guard.reward_node") as reward, \
            NodeProcess("cam_guard.preview_node", {"max_rate": 60.0}) as preview:
        overlays = probe.subscribe(Image, "/preview/image")
        rewards = probe.subscribe(Vector3Stamped, "/reward/stamped")
        overlays.wait_count(10, timeout=30)
        overlays.clear()
        rewards.clear()
        time.sleep(seconds)  # the measurement window
        shown = list(overlays.items)
        overlay_ms = [(t - stamp_to_ns(m.header.stamp) / 1e9) * 1000 for t, m in shown]
        reward_ms = [(t - stamp_to_ns(m.header.stamp) / 1e9) * 1000 for t, m in rewards.items]
        for node in (preview, reward, camera):
            node.stop()
    numbers = sorted({read_frame_counter(from_image_msg(m)) for _, m in shown})
    dropped = 1 - len(numbers) / (numbers[-1] - numbers[0] + 1)
    return overlay_ms, reward_ms, dropped


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    rclpy.init()
    rows = []
    for width, height in ((640, 480), (1280, 720)):
        with MjpegFaultServer(width, height, 30) as server:  # every frame numbered, none repeated
            base, _ = in_process(server.url, args.seconds)
            overlay_ms, reward_ms, dropped = chain(server.url, width, height, args.seconds)
        size = f"{width}x{height}"
        rows.append([size, "in-process loop (baseline)", pct(base, 50), pct(base, 95), pct(base, 99),
                     max(base), "0%"])
        rows.append([size, "chain: capture → reward", pct(reward_ms, 50), pct(reward_ms, 95), pct(reward_ms, 99),
                     max(reward_ms), ""])
        rows.append([size, "chain: capture → overlay", pct(overlay_ms, 50), pct(overlay_ms, 95),
                     pct(overlay_ms, 99), max(overlay_ms), f"{100 * dropped:.1f}%"])
        rows.append([size, "chain − baseline (p95)", "", pct(overlay_ms, 95) - pct(base, 95), "", "", ""])
        for row in rows[-4:]:
            print(row, flush=True)
    rclpy.shutdown()
    print(f"\n{machine()}; MJPEG over HTTP at 30 fps, colour-rule classifier, {args.seconds:.0f} s per size\n")
    print(table(["size", "path", "p50 ms", "p95 ms", "p99 ms", "max ms", "dropped"], rows))


if __name__ == "__main__":
    main()
