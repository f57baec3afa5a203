"""Native stderr lines to the node's logger: every kind shown, repeats counted, floods capped."""

from cam_guard.capture.native_log import NativeLogRelay, line_kind


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


REFUSED = "[tcp @ 0x{:x}] Connection to tcp://127.0.0.1:8080 failed: Connection refused"


def test_repeats_of_a_line_are_held_back_and_counted_on_the_next_one_logged():
    clock, logged = Clock(), []
    relay = NativeLogRelay(logged.append, window_s=10.0, clock=clock)
    for attempt in range(10):  # one per reconnect attempt, each from a new worker (a new address)
        clock.now = attempt * 1.0
        relay.line(REFUSED.format(0x55D0 + attempt))
    assert logged == [REFUSED.format(0x55D0)]
    clock.now = 10.0
    relay.line(REFUSED.format(0x1234))
    assert logged[-1] == REFUSED.format(0x1234) + " (and 9 more like it since it was last logged)"
    assert relay.recent[-1] == REFUSED.format(0x1234)


def test_another_kind_of_line_is_logged_at_once_and_a_flood_is_capped():
    clock, logged = Clock(), []
    relay = NativeLogRelay(logged.append, window_s=10.0, max_lines=5, clock=clock)
    relay.line(REFUSED.format(1))
    relay.line("[http @ 0x2] HTTP error 404 Not Found")
    assert len(logged) == 2
    for n in range(100):
        relay.line(f"distinct message {chr(65 + n % 26)}{chr(65 + n // 26)}")
    assert len(logged) == 5, "no more than max_lines per window"
    clock.now = 10.0
    relay.line("distinct message ZZ")
    assert len(logged) == 6


def test_pointers_and_numbers_do_not_make_a_new_kind():
    assert line_kind("Corrupt JPEG data: 17 extraneous bytes") == line_kind("Corrupt JPEG data: 923 extraneous bytes")
    assert line_kind(REFUSED.format(1)) != line_kind("[http @ 0x1] HTTP error 404 Not Found")
