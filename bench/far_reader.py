"""Issue 18's table: what one raw reader on another host, behind 100 Mbit, does to the camera and its
other readers — and what a stopped reader does. Needs root (two hosts in network namespaces).

    python bench/far_reader.py [--seconds 6] [--camera-from DIR] [--label after] [--reliable-far]
                               [--publication-mode ASYNCHRONOUS]

Host A: camera_node at 1280x720 from a 30 fps MJPEG stream, two local raw readers (one is stopped
in the last phase). Host B: an `image_raw/compressed` reader, and in the middle phases one raw reader
(best effort, as `ros2 topic hz` and rqt; `--reliable-far` for a reliable one). Phases: no far
reader (the same-run baseline), far raw reader, far reader SIGSTOPped, local reader SIGSTOPped.
Columns: the camera's publish rate (from its diagnostics), fps and latency (arrival − capture stamp)
at the local reader, fps at B, link MB/s sent by A, and the CPU time camera_node (with its capture
worker) spent per published frame — a figure the other work on a shared machine does not change —
and the share of a core the far raw reader's process used: both hosts share this machine's two cores,
so what that reader spends receiving is taken from the camera here (on two machines it is not).
Last column: the stopped local readers the camera's diagnostics named (`stopped_local_readers`).
`--camera-from DIR` runs the camera node from another checkout (the code before the fix:
`git archive <commit> cam_guard | tar -x -C DIR`).
"""

import argparse
import os
import signal
import sys

import _common  # noqa: F401  (sets the ROS environment first)
from _common import cpu_seconds, machine, table, tree

from cam_guard.testing.two_hosts import TwoHostRig, Window

RAW, COMPRESSED = "/image_raw", "/image_raw/compressed"


def stopped_named(rig: TwoHostRig, window: Window) -> str:
    """The stopped local readers the camera's diagnostics named during `window` (PID and name)."""
    return ", ".join(sorted(rig.diagnostic_values("local", window, "stopped_local_readers") - {"none", None})) or "-"


def run(seconds: float, camera_from: str, reliable_far: bool, publication_mode: str) -> list[list[object]]:
    with TwoHostRig(domain_id=int(os.environ["ROS_DOMAIN_ID"])) as rig:
        a, b = rig.net.a, rig.net.b
        url = rig.start_mjpeg(a)
        camera_env = {"PYTHONPATH": camera_from} if camera_from else {}
        if publication_mode:
            camera_env["RMW_FASTRTPS_PUBLICATION_MODE"] = publication_mode
        camera = rig.start_node(a, "cam_guard.camera_node", {"device": url, "width": 1280, "height": 720},
                                env=camera_env)
        rig.start_recorder(a, "local", [f"Image:{RAW}", "DiagnosticArray:/diagnostics"])
        stoppable = rig.start_recorder(a, "local2", [f"Image:{RAW}"])
        rig.start_recorder(b, "far_compressed", [f"CompressedImage:{COMPRESSED}"])
        rig.wait_records("far_compressed", COMPRESSED, 30, timeout=60)
        rig.wait_records("local", RAW, 30, timeout=30)
        cpu: dict[str, float] = {}
        far_cpu: dict[str, float] = {}
        windows = {}
        far = None

        def phase(name: str, seconds: float) -> None:
            far_pids = [far.pid] if far is not None and far.proc.poll() is None else []
            before, far_before = cpu_seconds(tree(camera.pid)), cpu_seconds(far_pids)
            windows[name] = rig.window(seconds)
            cpu[name] = cpu_seconds(tree(camera.pid)) - before
            far_cpu[name] = (cpu_seconds(far_pids) - far_before) / (windows[name].end - windows[name].start)

        phase("no far reader", seconds)
        far = rig.start_recorder(b, "far_raw", [f"Image:{RAW}"], *(["--reliable"] if reliable_far else []))
        rig.window(4)  # discovery across the link, and the first frames
        phase("far raw reader", seconds)
        os.kill(far.pid, signal.SIGSTOP)
        phase("far reader stopped 5 s", 5)
        os.kill(far.pid, signal.SIGCONT)
        far.stop(timeout=15)  # a clean exit unmatches it at once (a killed one stays until its lease ends)
        rig.window(2)
        os.kill(stoppable.pid, signal.SIGSTOP)
        phase("local reader stopped 5 s", 5)
        os.kill(stoppable.pid, signal.SIGCONT)
        if camera.proc.poll() is not None:
            raise SystemExit(f"camera_node exited with {camera.proc.returncode}:\n{camera.output()[-2000:]}")
        if any(rig.stats("local", RAW, w).count == 0 for w in windows.values()):
            print(f"a phase without frames; camera_node's log:\n{camera.output()[-3000:]}", file=sys.stderr)
        rows = []
        for name, window in windows.items():
            local = rig.stats("local", RAW, window)
            published = rig.published_hz("local", window)
            rows.append([name, published, local.fps, local.latency_ms_p50, local.latency_ms_p95,
                         rig.stats("far_compressed", COMPRESSED, window).fps, rig.stats("far_raw", RAW, window).fps,
                         window.link_mb_s, 1000 * cpu[name] / max(1e-9, published * (window.end - window.start)),
                         far_cpu[name], stopped_named(rig, window)])
        return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--camera-from", default="", help="run camera_node from this checkout (before the fix)")
    parser.add_argument("--label", default="after")
    parser.add_argument("--reliable-far", action="store_true")
    parser.add_argument("--publication-mode", default="", help="RMW_FASTRTPS_PUBLICATION_MODE for the camera")
    args = parser.parse_args()
    rows = [[args.label, *row] for row in run(args.seconds, args.camera_from, args.reliable_far, args.publication_mode)]
    print(f"{machine()}; load average {os.getloadavg()[0]:.1f}")
    print(table(["code", "phase", "camera publishes /s", "local fps", "local p50 ms", "local p95 ms",
                 "compressed fps at B", "raw fps at B", "link MB/s", "camera CPU ms/frame", "far reader cores",
                 "stopped readers named"],
                rows))


if __name__ == "__main__":
    main()
