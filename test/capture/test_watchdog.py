"""The watchdog state machine, driven with explicit times."""

import pytest

from cam_guard.capture.watchdog import CameraState, Watchdog, WatchdogConfig


def test_stall_detection_recovery_and_timings():
    wd = Watchdog(WatchdogConfig(stall_timeout=0.5, open_timeout=2.0), now=0.0)
    assert wd.state is CameraState.STARTING and wd.deadline() == 2.0
    wd.on_attempt(0.0)
    wd.on_frame(0.1)
    assert wd.state is CameraState.STREAMING and wd.deadline() == pytest.approx(0.6)
    wd.on_frame(0.2)
    wd.on_fault(0.7, "stalled")
    assert wd.state is CameraState.STALLED and wd.stalls == 1
    assert wd.detect_times[-1] == pytest.approx(0.5)
    assert wd.backoff() == 0.0, "the first reopen after a stall is immediate"
    wd.on_attempt(0.7)
    assert wd.state is CameraState.RECONNECTING and wd.reconnect_attempts == 1
    assert wd.deadline() == pytest.approx(2.7)
    wd.on_frame(0.9)
    assert wd.state is CameraState.STREAMING and wd.recoveries == 1
    assert wd.recover_times[-1] == pytest.approx(0.2)
    assert wd.detect_summary() == pytest.approx((0.5, 0.5, 0.5))


def test_backoff_doubles_to_its_cap_and_resets_on_a_frame():
    wd = Watchdog(WatchdogConfig(backoff_initial=0.1, backoff_max=0.5), now=0.0)
    delays = []
    for t in range(6):
        wd.on_attempt(float(t))
        wd.on_fault(float(t) + 0.5, "could not open")
        delays.append(wd.backoff())
    assert delays == pytest.approx([0.1, 0.2, 0.4, 0.5, 0.5, 0.5])
    wd.on_frame(10.0)
    assert wd.failed_attempts == 0 and wd.backoff() == 0.0


def test_gives_up_after_max_attempts_only_when_asked():
    wd = Watchdog(WatchdogConfig(max_attempts=3), now=0.0)
    for t in range(3):
        assert wd.state is not CameraState.FAILED
        wd.on_attempt(float(t))
        wd.on_fault(float(t), "could not open")
    assert wd.state is CameraState.FAILED and "3 failed attempts" in wd.reason
    forever = Watchdog(WatchdogConfig(max_attempts=0), now=0.0)
    for t in range(100):
        forever.on_attempt(float(t))
        forever.on_fault(float(t), "x")
    assert forever.state is CameraState.RECONNECTING


def test_fail_gives_up_from_any_state():
    wd = Watchdog(WatchdogConfig(), now=0.0)
    wd.on_attempt(0.0)
    wd.on_frame(0.1)
    wd.fail("supervisor error: boom")
    assert wd.state is CameraState.FAILED and wd.reason == "supervisor error: boom"


@pytest.mark.parametrize("kwargs", [{"stall_timeout": 0}, {"backoff_initial": 2.0, "backoff_max": 1.0},
                                    {"max_attempts": -1}])
def test_invalid_config_is_refused(kwargs):
    with pytest.raises(ValueError):
        WatchdogConfig(**kwargs)


def test_warmup_withholds_frames_after_each_open_and_counts_as_part_of_recovery():
    wd = Watchdog(WatchdogConfig(stall_timeout=0.5, open_timeout=2.0), now=0.0)
    wd.on_attempt(0.0, warmup=0.5)
    assert wd.on_frame(0.2) is False
    assert wd.state is CameraState.WARMING_UP and "0.50 s" in wd.reason
    assert wd.deadline() == pytest.approx(0.7), "frames must keep flowing while warming up"
    assert [wd.on_frame(t) for t in (0.3, 0.6, 0.69)] == [False, False, False]
    assert wd.on_frame(0.71) is True and wd.state is CameraState.STREAMING
    assert (wd.warmup_frames, wd.frames) == (4, 1)
    wd.on_fault(1.5, "stalled")
    wd.on_attempt(1.5, warmup=0.5)
    assert wd.on_frame(1.6) is False and wd.state is CameraState.WARMING_UP, "every reopen warms up again"
    assert wd.on_frame(2.1) is True
    assert wd.recover_times[-1] == pytest.approx(0.6), "recovered = publishing again, after the warm-up"


def test_no_warmup_publishes_the_first_frame():
    wd = Watchdog(WatchdogConfig(), now=0.0)
    wd.on_attempt(0.0, warmup=0.0)
    assert wd.on_frame(0.1) is True and wd.state is CameraState.STREAMING and wd.warmup_frames == 0


def test_a_camera_that_quits_while_warming_up_is_a_failed_attempt():
    wd = Watchdog(WatchdogConfig(stall_timeout=0.5), now=0.0)
    wd.on_attempt(0.0, warmup=1.0)
    wd.on_frame(0.1)
    wd.on_fault(0.6, "no frame for 0.50 s")
    assert wd.state is CameraState.RECONNECTING and wd.failed_attempts == 1 and wd.stalls == 0
    assert wd.backoff() > 0
