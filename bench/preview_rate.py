"""Share of camera frames that come back as overlays on preview/image (issue 13).

    python bench/preview_rate.py [--seconds 6] [--repeats 3] [--max-rate 30]

hilserl_graph on the synthetic 30 fps camera; this process subscribes to image_raw (the baseline:
frames the camera published) and preview/image, and counts, per window, the frames whose number
(drawn into the pixels) came back as an overlay.
"""

import argparse

import _common  # noqa: F401  (sets the ROS environment first)
import rclpy
from _common import machine, table

from cam_guard.ros.transport import apply_shm_profile
from cam_guard.testing.harness import RosProbe
from cam_guard.testing.preview_rate import measure_window, synthetic_graph


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-rate", type=float, default=30.0)
    args = parser.parse_args()
    apply_shm_profile()
    rclpy.init()
    rows = []
    with RosProbe() as probe, synthetic_graph(probe, f"preview.max_rate={args.max_rate}") as (raw, previews, _):
        for repeat in range(args.repeats):
            window = measure_window(raw, previews, args.seconds)
            rows.append([f"window {repeat + 1}", window.camera_frames, window.preview_frames, window.share])
            print(rows[-1], flush=True)
    rclpy.shutdown()
    print(f"\n{machine()}; hilserl_graph, synthetic 640x480 @ 30 fps, preview max_rate {args.max_rate}, "
          f"{args.seconds:.0f} s windows\n")
    print(table(["window", "camera frames (baseline)", "overlays", "× camera"], rows))


if __name__ == "__main__":
    main()
