"""Frame sets across cameras: grouped by capture stamp, never an old frame beside a new one."""

import itertools
import random

import pytest

from cam_guard.reward.grouping import (
    AUTO,
    CLASSIFYING,
    FALLBACK_SKEW_NS,
    LATE,
    NO_FRAME,
    FrameGrouper,
    FrameSet,
    SkippedSet,
    auto_skew_ns,
    reward_state,
)

MS = 1_000_000
PERIOD = 33_333_333  # 30 fps


def feed(grouper: FrameGrouper, arrivals: list[tuple[int, int, int]]) -> list[FrameSet | SkippedSet]:
    """Frames as (arrival ns, camera, stamp ns), added in arrival order; take() after each, like the node."""
    decisions = []
    for _, camera, stamp in sorted(arrivals):
        grouper.add(camera, stamp, (camera, stamp))
        decision = grouper.take()
        if decision is not None:
            decisions.append(decision)
    return decisions


def stream(camera: int, offset_ns: int, frames: int, delay_ns: int = 2 * MS,
           period: int = PERIOD) -> list[tuple[int, int, int]]:
    return [(offset_ns + i * period + delay_ns, camera, offset_ns + i * period) for i in range(frames)]


def test_one_camera_classifies_each_frame_and_counts_the_ones_it_never_reached():
    grouper = FrameGrouper(1, 20 * MS, 500 * MS)
    assert len(feed(grouper, stream(0, 0, 10))) == 10
    for i in range(3):  # a burst while the classifier is busy: only the newest is taken
        grouper.add(0, (20 + i) * PERIOD, i)
    decision = grouper.take()
    assert isinstance(decision, FrameSet) and decision.items == [2]
    assert grouper.take() is None, "a set is decided once"
    assert grouper.dropped == 2 and sum(grouper.received) == 13


@pytest.mark.parametrize("phase_ms", [0, 5, 10, 16])
def test_free_running_cameras_pair_frames_within_half_a_period(phase_ms):
    grouper = FrameGrouper(2, 20 * MS, 500 * MS)
    decisions = feed(grouper, stream(0, 0, 30) + stream(1, phase_ms * MS, 30, delay_ns=9 * MS))
    assert all(isinstance(d, FrameSet) for d in decisions)
    assert len(decisions) >= 28, "about one set per frame period"
    assert max(d.skew_ns for d in decisions) <= min(phase_ms, 33 - phase_ms) * MS + 1
    stamps = [tuple(d.stamps_ns) for d in decisions]
    assert stamps == sorted(set(stamps)), "each set once, moving forward"
    assert all(d.items == [(0, d.stamps_ns[0]), (1, d.stamps_ns[1])] for d in decisions), "camera order kept"


def test_the_closest_set_is_taken_not_each_cameras_frame_nearest_the_pivot():
    # Nearest the pivot's frame (phase 0), camera 1 gives +16.5 ms and camera 2 -16.4 ms (its +16.9 is
    # farther): 32.9 ms apart, skipped. The closest set holds +16.5 and +16.9: 16.9 ms.
    grouper = FrameGrouper(3, 20 * MS, 500 * MS)
    decisions = feed(grouper, stream(0, 0, 30) + stream(1, 16_500_000, 30) + stream(2, 16_900_000, 30))
    assert len(decisions) >= 28 and all(isinstance(d, FrameSet) for d in decisions)
    assert max(d.skew_ns for d in decisions) <= 16_900_000


@pytest.mark.parametrize("seed", range(240, 300))
def test_sets_of_cameras_at_different_rates_only_move_forward(seed):
    # 3-4 cameras at 15-60 fps, random phases, stamps jittered by up to 2 ms and arrivals by 1-12 ms: the
    # pivot moves among cameras; every classified set holds a newer frame of every camera than the set
    # before (one set per moment). (Each camera's oldest frame in the window went back in time for seeds
    # 250, 254 and 277.)
    rnd = random.Random(seed)
    periods = rnd.choice([[PERIOD // 2, 2 * PERIOD, 50 * MS], [PERIOD, 2 * PERIOD, 50 * MS, PERIOD // 2]])
    arrivals = []
    for camera, period in enumerate(periods):
        offset = rnd.randrange(0, 60) * MS
        for i in range(2_000_000_000 // period):
            stamp = offset + i * period + rnd.randrange(-2 * MS, 2 * MS)
            arrivals.append((stamp + rnd.randrange(1 * MS, 12 * MS), camera, stamp))
    grouper = FrameGrouper(len(periods), AUTO, 500 * MS)
    stamps = [tuple(d.stamps_ns) for d in feed(grouper, arrivals) if isinstance(d, FrameSet)]
    assert len(stamps) >= 20
    for camera in range(len(periods)):
        column = [s[camera] for s in stamps]
        assert all(a < b for a, b in itertools.pairwise(column)), f"camera {camera}: a frame twice, or back in time"
    assert len(stamps) <= 2 * 10**9 // max(periods) + 1, "more sets than the slowest camera has frames"


def test_a_wide_set_around_a_faster_cameras_frame_is_passed_over_not_skipped():
    # 30 and 15 fps, the 15 fps camera 20 ms after a 30 fps frame: around a 30 fps frame between two
    # 15 fps ones the set spans 20 ms; around each 15 fps frame the next 30 fps frame is 13.3 ms away.
    grouper = FrameGrouper(2, AUTO, 500 * MS)
    decisions = feed(grouper, stream(0, 0, 60) + stream(1, 20 * MS, 30, period=2 * PERIOD))
    later = decisions[3:]  # once both periods are measured
    assert len(later) >= 25 and all(isinstance(d, FrameSet) for d in later)
    assert grouper.skipped == 0


def test_auto_max_skew_is_the_phase_spread_n_cameras_can_have_plus_jitter():
    assert auto_skew_ns([PERIOD, PERIOD]) == PERIOD // 2 + 3 * MS  # 19.7 ms
    assert auto_skew_ns([PERIOD] * 4) == PERIOD * 3 // 4 + 3 * MS  # 28 ms
    assert auto_skew_ns([2 * PERIOD, PERIOD]) == PERIOD // 2 + 3 * MS, "sets form around the slower camera's frames"
    assert auto_skew_ns([2 * PERIOD, PERIOD, 2 * PERIOD]) == 2 * PERIOD * 2 // 3 + 3 * MS
    assert auto_skew_ns([PERIOD] * 20) == PERIOD * 9 // 10, "never a whole period: that is another moment"
    assert auto_skew_ns([PERIOD, None]) == FALLBACK_SKEW_NS, "a camera with one frame has no period yet"


@pytest.mark.parametrize("max_skew_ns", [20 * MS, AUTO])
def test_four_cameras_evenly_out_of_phase_get_sets_only_with_auto_max_skew(max_skew_ns):
    # Phases 0, 8.3, 16.7 and 25 ms: any set of one frame each spans at least 25 ms, for as long as they run.
    grouper = FrameGrouper(4, max_skew_ns, 500 * MS)
    decisions = feed(grouper, [a for c in range(4) for a in stream(c, c * PERIOD // 4, 60)])
    late = decisions[5:]  # once every camera's period is measured
    if max_skew_ns == AUTO:
        assert len(late) >= 50 and len(decisions) <= 60, "one set per moment: at most one per frame"
        assert all(isinstance(d, FrameSet) for d in late)
        assert max(d.skew_ns for d in late) <= grouper.effective_skew_ns() == PERIOD * 3 // 4 + 3 * MS
    else:
        assert late and all(isinstance(d, SkippedSet) for d in late), "a fixed 20 ms never fits"


def test_a_set_spread_wider_than_max_skew_is_skipped_and_names_the_camera_out_of_step():
    grouper = FrameGrouper(3, 20 * MS, 500 * MS)
    # 10 fps each; camera 1 captures 50 ms after the others: its nearest frame is always 50 ms off.
    decisions = feed(grouper, stream(0, 0, 10, period=100 * MS) + stream(1, 50 * MS, 10, period=100 * MS)
                     + stream(2, 0, 10, period=100 * MS))
    assert decisions and all(isinstance(d, SkippedSet) for d in decisions)
    assert all(d.skew_ns == 50 * MS and d.farthest == 1 for d in decisions)
    assert grouper.skipped == len(decisions)


def test_a_camera_that_stops_stops_the_sets_instead_of_pairing_its_last_frame_with_new_ones():
    grouper = FrameGrouper(2, 20 * MS, 500 * MS)
    before = feed(grouper, stream(0, 0, 10) + stream(1, 3 * MS, 10))
    after = feed(grouper, [(t, c, s) for t, c, s in stream(0, 0, 40) if s > 9 * PERIOD])  # camera 1 silent
    assert before and all(isinstance(d, FrameSet) for d in before)
    assert before[-1].stamps_ns == [9 * PERIOD, 9 * PERIOD + 3 * MS]
    assert after == [], "no old frame of camera 1 beside a new frame of camera 0"
    assert grouper.skipped == 0, "a silent camera is not a stream of skipped sets"
    now = 40 * PERIOD
    assert grouper.problems(now) == [(1, LATE)], "its newest frame is older than stale_after"
    grouper.set_state(1, "STALLED")
    assert grouper.problems(now) == [(1, "STALLED")], "the camera's own word comes first"


def test_a_camera_that_says_it_is_not_streaming_blocks_classification_until_it_is():
    grouper = FrameGrouper(2, 20 * MS, 500 * MS)
    feed(grouper, stream(0, 0, 3) + stream(1, 0, 3))
    grouper.set_state(0, "STREAMING")
    grouper.set_state(1, "RECONNECTING")
    assert feed(grouper, [(t, c, s) for t, c, s in stream(0, 0, 6) + stream(1, 0, 6) if s >= 3 * PERIOD]) == []
    assert grouper.problems(6 * PERIOD) == [(1, "RECONNECTING")]
    grouper.set_state(1, "STREAMING")
    decision = grouper.take()
    assert isinstance(decision, FrameSet) and decision.stamps_ns == [5 * PERIOD, 5 * PERIOD]


def test_nothing_is_classified_before_every_camera_has_a_frame():
    grouper = FrameGrouper(3, 20 * MS, 500 * MS)
    assert feed(grouper, stream(0, 0, 5) + stream(2, 0, 5)) == []
    assert grouper.problems(5 * PERIOD) == [(1, NO_FRAME)]


def test_a_camera_delivering_later_than_the_others_is_still_paired_by_capture_time():
    grouper = FrameGrouper(2, 20 * MS, 500 * MS)
    # Camera 1 arrives 70 ms after capture (two frames behind): pairs are formed by stamp, not arrival.
    decisions = feed(grouper, stream(0, 0, 20) + stream(1, 4 * MS, 20, delay_ns=70 * MS))
    assert decisions and all(isinstance(d, FrameSet) and d.skew_ns == 4 * MS for d in decisions)


def test_reward_state_names_the_cameras_that_hold_the_reward_up():
    labels = ["front", "wrist"]
    ok = FrameSet([1, 2], [0, 3 * MS])
    assert reward_state(labels, [], ok, "") == CLASSIFYING
    assert reward_state(labels, [(1, "STALLED")], ok, CLASSIFYING) == "wrist STALLED"
    assert reward_state(labels, [(0, NO_FRAME), (1, LATE)], None, "") == "front NO_FRAME, wrist LATE"
    assert reward_state(labels, [], SkippedSet([0, 50 * MS], 1), CLASSIFYING) == "wrist SKEWED"
    assert reward_state(labels, [], None, "wrist SKEWED") == "wrist SKEWED", "no new set: the last word stands"
