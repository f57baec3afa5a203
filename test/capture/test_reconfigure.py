"""New capture settings while running: the watchdog's RECONFIGURING state (pure logic)."""

import pytest

from cam_guard.capture.watchdog import CameraState, Watchdog, WatchdogConfig


def streaming_watchdog() -> Watchdog:
    wd = Watchdog(WatchdogConfig(stall_timeout=0.5, open_timeout=2.0, max_attempts=2), now=0.0)
    wd.on_attempt(0.0)
    wd.on_frame(0.1)
    return wd


def test_a_reconfiguration_is_a_fresh_start_not_a_fault():
    wd = streaming_watchdog()
    wd.on_reconfigure(1.0)
    assert wd.state is CameraState.RECONFIGURING and wd.reason == "applying new settings"
    wd.on_attempt(1.0)
    assert wd.state is CameraState.RECONFIGURING and wd.reconnect_attempts == 0
    assert wd.deadline() == pytest.approx(3.0), "the new worker gets the whole open_timeout"
    wd.on_frame(1.2)
    assert wd.state is CameraState.STREAMING
    assert (wd.stalls, wd.recoveries, wd.failed_attempts) == (0, 0, 0), "nothing failed"


def test_settings_that_cannot_be_opened_count_as_failed_attempts():
    wd = streaming_watchdog()
    wd.on_reconfigure(1.0)
    wd.on_attempt(1.0)
    wd.on_fault(3.0, "could not open /dev/video9")
    assert wd.state is CameraState.RECONNECTING and wd.failed_attempts == 1 and wd.backoff() > 0
    wd.on_attempt(3.1)
    wd.on_fault(5.1, "could not open /dev/video9")
    assert wd.state is CameraState.FAILED, "max_attempts applies to the new settings too"


def test_new_timings_take_effect_on_the_next_deadline():
    wd = streaming_watchdog()
    assert wd.deadline() == pytest.approx(0.6)
    wd.config = WatchdogConfig(stall_timeout=5.0, open_timeout=2.0)
    assert wd.deadline() == pytest.approx(5.1)
