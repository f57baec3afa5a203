"""Cost of a cell as cameras grow (issue 10): N cameras, 1280x720 MJPEG at 30 fps each, with reward and preview.

    python bench/multicam.py [--cameras 1,2,4] [--seconds 10] [--size 1280x720] [--transport raw|compressed]
                             [--set preview.max_rate=10 ...]

Each row runs `hilserl_graph --cameras c0,c1,… --devices URL,…` on N MJPEG-over-HTTP servers in this
process (frames pre-encoded, so serving costs this process little). Measured over one window after a
warm-up, against the one-camera row:
- fps per camera delivered to a subscriber: frames the reward node received from each camera (its
  diagnostics), so no extra subscriber loads the machine;
- reward Hz and capture → reward latency at a subscriber here (reward/stamped carries the capture stamp);
- preview Hz (overlays arriving here);
- CPU of the whole graph (every process hilserl_graph started, capture workers included) and per part,
  also per camera frame delivered, and what that makes for N cameras at the full 30 fps (on a loaded
  machine the graph gets fewer frames and fewer cores; its cost per frame changes much less);
- the machine's load average, since other work shares the two cores.
"""

import argparse
import os
import time
from pathlib import Path

import _common  # noqa: F401  (sets the ROS environment first)
import rclpy
from _common import cpu_seconds, machine, pct, table, tree
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import Vector3Stamped
from sensor_msgs.msg import Image

from cam_guard.ros.image_conversion import stamp_to_ns
from cam_guard.ros.transport import apply_fastdds_profile
from cam_guard.testing.fault_injection import MjpegFaultServer
from cam_guard.testing.harness import NodeProcess, Recorder, RosProbe, diagnostic_values

PARTS = {"cam_guard.capture.worker": "capture workers", "cam_guard.camera_node": "camera nodes",
         "cam_guard.reward_node": "reward", "cam_guard.preview_node": "preview",
         "cam_guard.tools.graph_launcher": "launcher"}


def part_of(pid: int) -> str:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return "gone"
    return next((part for module, part in PARTS.items() if module in cmdline), "other")


def cpu_by_part(root: int) -> dict[int, tuple[str, float]]:
    return {pid: (part_of(pid), cpu_seconds([pid])) for pid in tree(root)}


def reward_status(diags: Recorder, after: float) -> tuple[float, dict[str, str]]:
    """The first reward diagnostics published after `after` (time.time()), with its stamp."""
    for _ in range(50):
        for array in diags.messages:
            stamp = stamp_to_ns(array.header.stamp) / 1e9
            for status in array.status:
                if status.name == "cam_guard: /reward" and stamp > after:
                    return stamp, diagnostic_values(status)
        time.sleep(0.1)
    raise RuntimeError("no reward diagnostics")


def all_cameras_reach_the_reward(diags: Recorder) -> bool:
    try:
        received = reward_status(diags, time.time())[1]["frames_received_per_camera"]
    except RuntimeError:  # the reward node is still starting
        return False
    return min(int(n) for n in received.split(", ")) >= 30


def run_cell(probe: RosProbe, cameras: int, width: int, height: int, seconds: float,
             transport: str, settings: list[str]) -> dict[str, object]:
    names = [f"c{i}" for i in range(cameras)]
    servers = [MjpegFaultServer(width, height, 30, quality=85, cycle_frames=90) for _ in names]
    urls = [server.start() for server in servers]
    rewards = probe.subscribe(Vector3Stamped, "/reward/stamped")
    previews = probe.subscribe(Image, "/preview/image")
    diags = probe.subscribe(DiagnosticArray, "/diagnostics")
    try:
        with NodeProcess("cam_guard.tools.graph_launcher", env={"DISPLAY": ""},
                         args=["--cameras", ",".join(names), "--devices", ",".join(urls),
                               "--set", f"camera.width={width}", "--set", f"camera.height={height}",
                               "--set", f"reward.transport={transport}",
                               "--set", f"preview.transport={transport}",
                               *(arg for setting in settings for arg in ("--set", setting))]) as graph:
            deadline = time.monotonic() + 120
            while not all_cameras_reach_the_reward(diags):  # under load, sets may still skew: not CLASSIFYING
                assert time.monotonic() < deadline, "not every camera reached the reward node"
            time.sleep(3.0)  # warm-up: every subscription matched, rates settled
            load_before = os.getloadavg()[0]
            t0, diag0 = reward_status(diags, time.time())
            cpu0 = cpu_by_part(graph.pid)
            rewards.clear()
            previews.clear()
            time.sleep(seconds)
            cpu1 = cpu_by_part(graph.pid)
            t1, diag1 = reward_status(diags, time.time())
            window = [(t, m) for t, m in rewards.items if t0 <= t <= t1]
            overlays = [t for t, _ in previews.items if t0 <= t <= t1]
            load_after = os.getloadavg()[0]
            graph.stop(timeout=20)
    finally:
        for server in servers:
            server.stop()
    elapsed = t1 - t0
    received0 = [int(n) for n in diag0["frames_received_per_camera"].split(", ")]
    received1 = [int(n) for n in diag1["frames_received_per_camera"].split(", ")]
    parts: dict[str, float] = {}
    for pid, (part, seconds_after) in cpu1.items():
        parts[part] = parts.get(part, 0.0) + seconds_after - cpu0.get(pid, (part, 0.0))[1]
    latency_ms = [(t - stamp_to_ns(m.header.stamp) / 1e9) * 1000 for t, m in window]
    frames = sum(b - a for a, b in zip(received0, received1, strict=True))
    return {
        # CPU per camera frame holds up under load better than cores do: it gives what N cameras at 30 fps need.
        "ms_per_frame": {k: v * 1000 / max(1, frames) for k, v in parts.items()},
        "fps": [(b - a) / elapsed for a, b in zip(received0, received1, strict=True)],
        "reward_hz": len(window) / elapsed, "preview_hz": len(overlays) / elapsed,
        "latency_p50": pct(latency_ms, 50), "latency_p95": pct(latency_ms, 95),
        "skew_p50": float(diag1["skew_ms_p50"]), "skew_p95": float(diag1["skew_ms_p95"]),
        "skipped": int(diag1["sets_skipped"]) - int(diag0["sets_skipped"]),
        "cores": sum(parts.values()) / elapsed, "parts": {k: v / elapsed for k, v in parts.items()},
        "load": (load_before + load_after) / 2,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cameras", default="1,2,4")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--transport", choices=("raw", "compressed"), default="raw",
                        help="what reward and preview read: compressed leaves the cameras no raw reader")
    parser.add_argument("--set", action="append", default=[], metavar="NODE.PARAM=VALUE",
                        help="hilserl_graph --set for every cell, e.g. preview.max_rate=10")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    apply_fastdds_profile()
    rclpy.init()
    results = {}
    with RosProbe() as probe:
        for cameras in (int(n) for n in args.cameras.split(",")):
            results[cameras] = run_cell(probe, cameras, width, height, args.seconds, args.transport, args.set)
            print(cameras, results[cameras], flush=True)
    rclpy.shutdown()
    base = results[min(results)]
    rows = []
    for cameras, r in results.items():
        fps = r["fps"]
        parts = r["parts"]
        per_frame = r["ms_per_frame"]
        needed = sum(per_frame.values()) * cameras * 30 / 1000
        rows.append([cameras, f"{min(fps):.1f} / {max(fps):.1f}", r["reward_hz"], r["preview_hz"],
                     r["latency_p50"], r["latency_p95"], f"{r['skew_p50']:.1f} / {r['skew_p95']:.1f}", r["skipped"],
                     r["cores"], r["cores"] / base["cores"],
                     " ".join(f"{k} {v:.2f}" for k, v in sorted(parts.items(), key=lambda kv: -kv[1]) if v >= 0.005),
                     sum(per_frame.values()),
                     " ".join(f"{k} {v:.1f}" for k, v in sorted(per_frame.items(), key=lambda kv: -kv[1]) if v >= 0.05),
                     needed, f"{r['load']:.1f}"])
    print(f"\n{machine()}; {args.size} MJPEG @ 30 fps per camera, colour rule, reward and preview read "
          f"{args.transport}, {args.seconds:.0f} s window{''.join(f', --set {s}' for s in args.set)}\n")
    print(table(["cameras", "fps per camera (min / max)", "reward Hz", "preview Hz", "capture→reward p50 ms",
                 "p95 ms", "skew p50 / p95 ms", "sets skipped", "graph cores", "× 1 camera", "cores by part",
                 "graph CPU ms per camera frame", "ms per frame by part", "cores for N × 30 fps", "load avg"], rows))


if __name__ == "__main__":
    main()
