"""Share of camera frames that come back as overlays on preview/image, with and without web viewers (issue 13).

    python bench/preview_rate.py [--seconds 6] [--repeats 3] [--max-rate 30] [--no-browser]

hilserl_graph on the synthetic 30 fps camera with the web view on; this process subscribes to
image_raw (the baseline: frames the camera published) and preview/image, and counts, per window,
the frames whose number (drawn into the pixels) came back as an overlay. Then the same with 5
MJPEG viewers reading as fast as they can plus 1 that stopped reading (another process), and with
headless chromium showing the page.
"""

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import _common  # noqa: F401  (sets the ROS environment first)
import rclpy
from _common import cpu_seconds, machine, table, tree

from cam_guard.ros.transport import apply_fastdds_profile
from cam_guard.testing.harness import RosProbe, free_port
from cam_guard.testing.headless_chromium import HeadlessChromium
from cam_guard.testing.mjpeg_viewer import ViewerProcess
from cam_guard.testing.preview_rate import RateWindow, measure_window, synthetic_graph

NO_VIEWER, READERS, BROWSER = "no viewer (baseline)", "5 MJPEG readers + 1 stalled", "headless chromium on the page"


def browser_cores(port: int, measure: Callable[[], RateWindow]) -> tuple[RateWindow, float]:
    """`measure` while headless chromium shows the page; also the cores chromium used meanwhile."""
    with HeadlessChromium() as browser:
        browser.open(f"http://127.0.0.1:{port}/")
        browser.wait_for("window.camGuard && document.getElementById('overlay').naturalWidth > 0", 30)
        cpu_before, started = cpu_seconds(tree(browser.proc.pid)), time.monotonic()
        window = measure()
        return window, (cpu_seconds(tree(browser.proc.pid)) - cpu_before) / (time.monotonic() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-rate", type=float, default=30.0)
    parser.add_argument("--no-browser", action="store_true", help="skip the chromium case")
    args = parser.parse_args()
    apply_fastdds_profile()
    rclpy.init()
    port = free_port()
    cases: dict[str, list[RateWindow]] = {NO_VIEWER: [], READERS: [], BROWSER: []}
    preview_cores: dict[str, list[float]] = {NO_VIEWER: [], READERS: [], BROWSER: []}
    reader_frames: list[int] = []
    browser_load: list[float] = []
    with RosProbe() as probe, synthetic_graph(probe, f"preview.max_rate={args.max_rate}",
                                              f"preview.web_port={port}") as (raw, previews, graph):
        preview_pid = next(pid for pid in tree(graph.pid)
                           if b"cam_guard.preview_node" in Path(f"/proc/{pid}/cmdline").read_bytes())

        def measure(case: str) -> RateWindow:
            cpu_before, started = cpu_seconds([preview_pid]), time.monotonic()
            window = measure_window(raw, previews, args.seconds)
            preview_cores[case].append((cpu_seconds([preview_pid]) - cpu_before) / (time.monotonic() - started))
            return window

        # Interleaved, so that load from other processes drifting over the run hits every case alike.
        for _ in range(args.repeats):
            cases[NO_VIEWER].append(measure(NO_VIEWER))
            with ViewerProcess(f"http://127.0.0.1:{port}/stream.mjpg", readers=5, stalled=1) as viewers:
                cases[READERS].append(measure(READERS))
                reader_frames += viewers.stop()["reader"]
            if not args.no_browser:
                window, cores = browser_cores(port, lambda: measure(BROWSER))
                cases[BROWSER].append(window)
                browser_load.append(cores)
    rclpy.shutdown()
    baseline = sum(w.share for w in cases[NO_VIEWER]) / args.repeats
    rows = []
    for name, measured in cases.items():
        if not measured:
            continue
        mean = sum(w.share for w in measured) / len(measured)
        rows.append([name, " ".join(f"{w.preview_frames}/{w.camera_frames}" for w in measured), mean,
                     mean / baseline, sum(preview_cores[name]) / len(measured)])
    print(f"\n{machine()}; hilserl_graph, synthetic 640x480 @ 30 fps, preview max_rate {args.max_rate}, "
          f"web view on, {args.seconds:.0f} s windows\n")
    print(table(["web viewers", "overlays/camera frames per window", "× camera", "× no-viewer share",
                 "preview_node cores"], rows))
    drawn = [w.preview_frames for w in cases[READERS]]
    print(f"\neach MJPEG reader got {min(reader_frames)}-{max(reader_frames)} frames while connected (a window "
          f"+ ~1 s; overlays drawn per window: {min(drawn)}-{max(drawn)})")
    if browser_load:
        print(f"chromium (all its processes) used {min(browser_load):.2f}-{max(browser_load):.2f} of the 2 cores")


if __name__ == "__main__":
    main()
