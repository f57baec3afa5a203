"""Issue 16's table: cameras on host A, reward_node + preview_node + the LeRobot bridge on host B behind a
100 Mbit link; raw vs compressed, 1 and 2 cameras at 1280x720. Needs root (network namespaces).

    python bench/two_machines.py [--seconds 8] [--cameras 1 2] [--transports raw compressed]

Per camera on A: a 30 fps MJPEG stream and camera_node in namespace /camN. On B: reward_node reading
every camera (the built-in colour rule), preview_node drawing every camera, one bridge per camera
(what a LeRobot camera object starts). Columns: frames per second the
bridge delivered per camera, rewards per second, capture→reward latency (reward/stamped arrival at B
minus the camera's capture stamp; both hosts share this machine's clock), link MB/s sent by A.
"""

import argparse
import os

import _common  # noqa: F401  (sets the ROS environment first)
from _common import machine, table

from cam_guard.testing.two_hosts import MJPEG_PORT, TwoHostRig


def run(cameras: int, transport: str, seconds: float) -> list[object]:
    with TwoHostRig(domain_id=int(os.environ["ROS_DOMAIN_ID"])) as rig:
        a, b = rig.net.a, rig.net.b
        topics = [f"/cam{i}/image_raw" for i in range(cameras)]
        for i in range(cameras):
            url = rig.start_mjpeg(a, port=MJPEG_PORT + i)
            rig.start_node(a, "cam_guard.camera_node", {"device": url, "width": 1280, "height": 720},
                           remaps={"__ns": f"/cam{i}"})
        rig.start_node(b, "cam_guard.reward_node", {"image_topics": topics, "transport": transport})
        rig.start_node(b, "cam_guard.preview_node", {"image_topics": topics, "transport": transport})
        for i, topic in enumerate(topics):
            rig.start_node(b, "cam_guard.testing.bridge_recorder",
                           args=[str(rig.path(f"bridge{i}.jsonl")), "--topic", topic, "--transport", transport,
                                 "--state-topic", f"/cam{i}/camera_state"])
        rig.start_recorder(b, "workstation", ["Vector3Stamped:/reward/stamped"])
        rig.start_recorder(a, "robot", ["DiagnosticArray:/diagnostics"])
        try:  # raw over 100 Mbit may deliver nothing at all: measure whatever arrives
            rig.wait_records("bridge0", "bridge/frame", 10, timeout=40)
        except AssertionError:
            print(f"{cameras} camera(s), {transport}: no frame at the bridge within 40 s", flush=True)
        rig.window(3)
        window = rig.window(seconds)
        fps = [rig.stats(f"bridge{i}", "bridge/frame", window).fps for i in range(cameras)]
        rewards = rig.stats("workstation", "/reward/stamped", window)
        camera_hz = rig.published_hz("robot", window, node="/cam0/camera")
        return [cameras, transport, camera_hz, " / ".join(f"{f:.1f}" for f in fps), rewards.fps,
                rewards.latency_ms_p50, rewards.latency_ms_p95, window.link_mb_s]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--cameras", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--transports", nargs="+", default=["raw", "compressed"])
    args = parser.parse_args()
    rows = [run(cameras, transport, args.seconds) for cameras in args.cameras for transport in args.transports]
    print(f"{machine()}; load average {os.getloadavg()[0]:.1f}")
    print(table(["cameras", "transport", "camera publishes /s (cam0)", "fps at B per camera (bridge)",
                 "rewards /s at B", "capture→reward p50 ms", "p95 ms", "link MB/s"], rows))


if __name__ == "__main__":
    main()
