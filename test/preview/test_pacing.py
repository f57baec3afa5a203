"""DrawPacer: the preview's rate limit, with arrival times given (no clock, no ROS)."""

import random

import pytest

from cam_guard.preview.pacing import DrawPacer


def admitted(pacer: DrawPacer, arrivals: list[float]) -> int:
    return sum(pacer.admit(t) for t in arrivals)


def jittered(rate: float, seconds: float, jitter_s: float, seed: int = 1) -> list[float]:
    """Frames captured every 1/rate s, each delivered up to `jitter_s` late, in delivery order."""
    rng = random.Random(seed)
    return sorted(i / rate + rng.uniform(0, jitter_s) for i in range(int(rate * seconds)))


def test_a_camera_at_max_rate_with_delivery_jitter_loses_no_frame():
    arrivals = jittered(30.0, 10.0, jitter_s=0.012)  # the spread measured in hilserl_graph
    assert admitted(DrawPacer(30.0), arrivals) == len(arrivals)


def test_a_strict_minimum_interval_would_have_dropped_them():
    # What the node did before: draw only when 1/max_rate has passed since the last draw.
    arrivals, last, drawn = jittered(30.0, 10.0, jitter_s=0.012), -1.0, 0
    for t in arrivals:
        if t - last >= 1 / 30.0:
            last, drawn = t, drawn + 1
    assert drawn < 0.8 * len(arrivals)


@pytest.mark.parametrize(("camera_fps", "max_rate"), [(60.0, 30.0), (30.0, 15.0), (240.0, 7.5)])
def test_a_faster_camera_is_thinned_to_max_rate(camera_fps, max_rate):
    seconds = 20.0
    drawn = admitted(DrawPacer(max_rate, burst=3.0), jittered(camera_fps, seconds, jitter_s=0.005))
    assert max_rate * seconds * 0.97 <= drawn <= max_rate * seconds + 3


def test_a_burst_after_a_pause_is_bounded():
    pacer = DrawPacer(10.0, burst=2.0)
    assert admitted(pacer, [0.0]) == 1
    assert admitted(pacer, [100.0 + i * 1e-4 for i in range(50)]) == 2  # idle time does not pile up


def test_nonsense_settings_are_refused():
    with pytest.raises(ValueError):
        DrawPacer(0.0)
    with pytest.raises(ValueError):
        DrawPacer(30.0, burst=0.5)
