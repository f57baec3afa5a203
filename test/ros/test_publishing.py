"""Each topic from its own thread, newest only; a refused publish is counted, never fatal (issue 18)."""

import threading
import time

from std_msgs.msg import String

from cam_guard.ros.publishing import Throttle, TopicPublisher


def test_throttle_lets_one_through_per_period():
    throttle = Throttle(10.0)
    assert throttle.ready(now=100.0)
    assert not throttle.ready(now=105.0)
    assert throttle.ready(now=110.5)


def test_a_slow_topic_drops_old_items_and_hands_each_published_one_on(probe):
    received = probe.subscribe(String, "/publishing_test", 10)
    release = threading.Event()
    handed_on: list[int] = []
    logged: list[tuple[str, str]] = []

    def build(item: int) -> String:
        release.wait(timeout=10)  # a slow conversion: items pile up meanwhile
        return String(data=str(item))

    topic = TopicPublisher(probe.node.create_publisher(String, "/publishing_test", 10), build,
                           lambda: True, lambda level, text: logged.append((level, text)), then=handed_on.append)
    try:
        topic.put(0)
        time.sleep(0.3)  # the thread took item 0 and waits in build
        for item in range(1, 6):
            topic.put(item)
        release.set()
        received.wait_count(2, timeout=10)
    finally:
        topic.close()
    assert [m.data for m in received.messages] == ["0", "5"], "only the newest of what waited is published"
    assert handed_on == [0, 5] and topic.published == 2 and topic.dropped == 4
    assert topic.diagnostic_values()["publishing_test.dropped_newest_only"] == "4"
    assert topic.error is None and not logged
