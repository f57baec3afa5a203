"""Most frames per second each cam_guard subscriber sustains (issue 7), fed as fast as possible.

    python bench/subscriber_rates.py [--seconds 8] [--size 640x480]

This process publishes frames on /image_raw in a tight loop (the offered rate, the baseline);
each consumer runs alone in its own process: reward_node (colour rule), preview_node (drawing
every frame it can), and the LeRobot bridge (CamGuardCamera.async_read in a loop).
"""

import argparse
import subprocess
import sys
import textwrap
import threading
import time

import _common  # noqa: F401  (sets the ROS environment first)
import rclpy
from _common import machine, table
from geometry_msgs.msg import Vector3Stamped
from sensor_msgs.msg import Image

from cam_guard.capture.synthetic import synthetic_frame
from cam_guard.ros.image_conversion import to_image_msg
from cam_guard.ros.transport import apply_fastdds_profile, image_qos
from cam_guard.testing.harness import NodeProcess, RosProbe

BRIDGE_READER = """
import sys, time
from lerobot_camera_cam_guard import CamGuardCamera, CamGuardCameraConfig
camera = CamGuardCamera(CamGuardCameraConfig(width={w}, height={h}, connect_timeout_ms=20000))
camera.connect()
print("ready", flush=True)
sys.stdin.readline()
count, started = 0, time.monotonic()
while time.monotonic() - started < {seconds}:
    try:
        camera.async_read(timeout_ms=500)
        count += 1
    except TimeoutError:
        pass
camera.disconnect()
print(count / (time.monotonic() - started), flush=True)
"""


class Flood:
    """Publish frames as fast as this process can, counting them."""

    def __init__(self, probe: RosProbe, width: int, height: int) -> None:
        self._pub = probe.node.create_publisher(Image, "/image_raw", image_qos("reliable"))
        self._frame = synthetic_frame(1, width, height)
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._pub.publish(to_image_msg(self._frame, "bgr8", time.time_ns(), "camera"))
            self.sent += 1

    def __enter__(self) -> "Flood":
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def topic_rate(probe: RosProbe, module: str, params: dict, topic: str, msg_type: type, width: int, height: int,
               seconds: float) -> tuple[float, float]:
    with NodeProcess(module, params) as node, Flood(probe, width, height) as flood:
        out = probe.subscribe(msg_type, topic)
        out.wait_count(5, timeout=30)
        sent0, got0, started = flood.sent, len(out.items), time.monotonic()
        time.sleep(seconds)  # the measurement window
        elapsed = time.monotonic() - started
        result = ((flood.sent - sent0) / elapsed, (len(out.items) - got0) / elapsed)
        node.stop()
    return result


def bridge_rate(probe: RosProbe, width: int, height: int, seconds: float) -> tuple[float, float]:
    code = textwrap.dedent(BRIDGE_READER.format(w=width, h=height, seconds=seconds))
    with Flood(probe, width, height) as flood:
        reader = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  text=True)
        assert reader.stdout is not None and reader.stdin is not None
        assert reader.stdout.readline().strip() == "ready"
        sent0, started = flood.sent, time.monotonic()
        reader.stdin.write("\n")
        reader.stdin.flush()
        rate = float(reader.stdout.readline())
        offered = (flood.sent - sent0) / (time.monotonic() - started)
        reader.wait(timeout=30)
    return offered, rate


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--size", default="640x480")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    apply_fastdds_profile()  # this process is the publisher here
    rclpy.init()
    rows = []
    with RosProbe() as probe:
        offered, got = topic_rate(probe, "cam_guard.reward_node", {}, "/reward/stamped", Vector3Stamped,
                                  width, height, args.seconds)
        rows.append(["reward_node (colour rule)", offered, got, got / offered])
        print(rows[-1], flush=True)
        offered, got = topic_rate(probe, "cam_guard.preview_node", {"max_rate": 240.0}, "/preview/image", Image,
                                  width, height, args.seconds)
        rows.append(["preview_node (overlay, max_rate 240)", offered, got, got / offered])
        print(rows[-1], flush=True)
        offered, got = bridge_rate(probe, width, height, args.seconds)
        rows.append(["LeRobot bridge (async_read loop)", offered, got, got / offered])
        print(rows[-1], flush=True)
    rclpy.shutdown()
    print(f"\n{machine()}; {width}x{height} bgr8 published as fast as one process can\n")
    print(table(["consumer", "offered fps (baseline)", "consumer fps", "× offered"], rows))


if __name__ == "__main__":
    main()
