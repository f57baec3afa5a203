"""How many camera frames come back as overlays: hilserl_graph on the synthetic camera, counted by
the frame numbers drawn into the pixels. Used by the preview tests and bench/preview_rate.py."""

import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from rclpy.qos import QoSProfile
from sensor_msgs.msg import Image

from cam_guard.capture.synthetic import read_frame_counter
from cam_guard.ros.image_conversion import from_image_msg, stamp_to_ns
from cam_guard.testing.harness import NodeProcess, Recorder, RosProbe

CAMERA_FPS = 30.0  # config/hilserl.yaml


@dataclass
class RateWindow:
    camera_frames: int  # frames captured in the window that the camera published
    preview_frames: int  # of those, how many came back as overlays

    @property
    def share(self) -> float:
        return self.preview_frames / max(1, self.camera_frames)


@contextmanager
def synthetic_graph(probe: RosProbe, *overrides: str) -> Iterator[tuple[Recorder, Recorder, NodeProcess]]:
    """hilserl_graph on the synthetic 30 fps camera, once frames and overlays flow to this process;
    `overrides` are `--set` values. Stops it with Ctrl-C and expects exit code 0."""
    # Reliable and deep on this side: this process must not lose what the nodes published.
    raw = probe.subscribe(Image, "/image_raw", QoSProfile(depth=200))
    previews = probe.subscribe(Image, "/preview/image", QoSProfile(depth=200))
    args = ["--set", "camera.device=synthetic"] + [a for o in overrides for a in ("--set", o)]
    with NodeProcess("cam_guard.tools.graph_launcher", args=args, env={"DISPLAY": ""}) as graph:
        previews.wait_count(10, timeout=40)
        raw.wait_count(10, timeout=10)
        yield raw, previews, graph
        code, _ = graph.stop(signal.SIGINT, timeout=10)
        assert code == 0, graph.output()[-3000:]


def measure_window(raw: Recorder, previews: Recorder, window_s: float) -> RateWindow:
    """Count the frames captured in the next `window_s` seconds, on image_raw and as overlays.

    A frame this process missed on image_raw but got as an overlay still counts as published.
    Raises AssertionError if an overlay carries the stamp of a frame other than the one it shows.
    """
    start_ns = time.time_ns()
    end_ns = start_ns + int(window_s * 1e9)

    def past_window(messages: list[Image]) -> bool:
        return bool(messages) and stamp_to_ns(messages[-1].header.stamp) >= end_ns

    previews.wait_for(past_window, window_s + 10, "an overlay of a frame captured after the window")
    raw.wait_for(past_window, 10, "a frame captured after the window")

    def counters(recorder: Recorder) -> dict[int, int]:
        return {stamp_to_ns(m.header.stamp): read_frame_counter(from_image_msg(m)) for m in recorder.messages
                if start_ns <= stamp_to_ns(m.header.stamp) < end_ns}

    sources, overlays = counters(raw), counters(previews)
    wrong = [(s, n) for s, n in overlays.items() if s in sources and sources[s] != n]
    if wrong:
        raise AssertionError(f"overlays stamped with another frame's stamp: {wrong[:5]}")
    return RateWindow(len(set(sources.values()) | set(overlays.values())), len(set(overlays.values())))
