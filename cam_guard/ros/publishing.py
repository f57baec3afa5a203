"""Publishing that no reader can slow (issue 18): one thread per topic, and signs of readers behind.

- `TopicPublisher`: each topic is published from a thread of its own, always the newest item
  (what it could not publish in time is replaced and counted), so building or sending a large
  `image_raw` never delays `image_raw/compressed`. A publish the middleware refuses while the node
  is up (rmw_fastrtps's ASYNCHRONOUS mode refuses a sample when its sender is busy for longer than
  max_blocking_time) is counted and logged, throttled; the next frame is tried. It never ends the
  stream. (Sends themselves must not block: rclpy holds the GIL in publish(), see fastdds_setup;
  images go out through an ImageSender, outside the GIL.)
- `ReaderLag`: whether a reader is falling behind, from what a publisher can see of it — a
  reliable reader that leaves samples unacknowledged, UDP datagrams dropped for a full send
  buffer (a network reader whose link cannot carry the topic), and a stopped local reader
  (`stopped_readers`: the one kind that slows the other readers too).
"""

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, TypeVar

from rclpy._rclpy_pybind11 import RCLError
from rclpy.duration import Duration
from rclpy.publisher import Publisher

from cam_guard.common.latest import LatestValue
from cam_guard.common.rate_meter import RateMeter
from cam_guard.ros.stopped_readers import StoppedReader

T = TypeVar("T")
LogFn = Callable[[str, str], None]  # (level, message)


class Throttle:
    """True at most once per `period_s`, so a condition that lasts is logged, not flooded."""

    def __init__(self, period_s: float) -> None:
        self._period_s = period_s
        self._last = float("-inf")

    def ready(self, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        if now - self._last < self._period_s:
            return False
        self._last = now
        return True


class TopicPublisher(Generic[T]):
    """Publishes `build(item)` for the newest item `put()` here, from a thread of its own."""

    LOG_EVERY_S = 10.0

    def __init__(self, publisher: Publisher, build: Callable[[T], Any | None], is_up: Callable[[], bool],
                 log: LogFn, then: Callable[[T], None] | None = None,
                 send: Callable[[Any], None] | None = None) -> None:
        """`then(item)` runs in this thread once `item` was published (or refused): how a large
        topic is handed the frame only after a small one went out (see CameraNode._on_frame).
        `send` publishes what `build` returned (default: `publisher.publish`; an ImageSender's
        `send` for images built by it)."""
        self.topic = publisher.topic_name.lstrip("/")
        self.publisher = publisher
        self._build = build
        self._send_built = publisher.publish if send is None else send
        self._then = then
        self._is_up = is_up
        self._log = log
        self._slot: LatestValue[T] = LatestValue()
        self._log_throttle = Throttle(self.LOG_EVERY_S)
        self.publish_ms = RateMeter(window_s=5.0)
        self.published = 0
        self.failures = 0
        self.error: Exception | None = None  # set when the thread died of a bug: the node must exit
        self._thread = threading.Thread(target=self._run, name=f"publish-{self.topic}", daemon=True)
        self._thread.start()

    @property
    def dropped(self) -> int:
        """Items replaced by a newer one before this thread could publish them."""
        return self._slot.dropped

    def put(self, item: T) -> None:
        self._slot.put(item)

    def close(self, timeout: float = 1.0) -> None:
        self._slot.close()
        self._thread.join(timeout=timeout)

    def readers(self) -> int:
        return self.publisher.get_subscription_count()

    def unacknowledged(self) -> bool:
        """True when a reliable reader has not acknowledged what was published (checked, not waited)."""
        try:
            return not self.publisher.wait_for_all_acked(Duration(seconds=0))
        except RCLError:
            return False  # shutting down

    def _run(self) -> None:
        try:
            while not self._slot.closed:
                item = self._slot.take(timeout=0.2)
                if item is not None and not self._publish(item):
                    return
        except Exception as exc:  # a bug must end the node, not leave the topic silent
            if not self._slot.closed:
                self.error = exc
                self._log("error", f"publishing {self.topic} failed: {exc!r}")

    def _publish(self, item: T) -> bool:
        """False when the node is shutting down and this thread should stop."""
        try:
            return self._send(item)
        finally:
            if self._then is not None:
                self._then(item)

    def _send(self, item: T) -> bool:
        started = None
        try:
            msg = self._build(item)  # None: nothing to publish for this item
            if msg is None:
                return True
            started = time.perf_counter()
            self._send_built(msg)
        except RCLError as exc:
            if not self._is_up():
                return False  # Ctrl-C shut the context down under us
            if started is None:
                raise  # building failed while the node is up: a bug
            self.failures += 1
            if self._log_throttle.ready():
                self._log("warn", f"{self.topic}: the middleware refused a frame ({self.failures} so far), "
                                  f"publishing the next one: {' '.join(str(exc).split())}")
            return True
        self.publish_ms.add((time.perf_counter() - started) * 1000)
        self.published += 1
        return True

    def diagnostic_values(self) -> dict[str, str]:
        return {f"{self.topic}.readers": str(self.readers()),
                f"{self.topic}.publish_ms_p95": f"{self.publish_ms.percentile(95):.2f}",
                f"{self.topic}.published": str(self.published),
                f"{self.topic}.dropped_newest_only": str(self.dropped),
                f"{self.topic}.publish_failures": str(self.failures)}


def udp_send_drops() -> int:
    """UDP datagrams this machine (network namespace) dropped because a socket's send buffer was full
    (the kernel's SndbufErrors, IPv4 and IPv6): with non-blocking sends, what a reader behind a link
    that cannot carry its topic does not get. Zero when /proc is not there (not Linux)."""
    total = 0
    for table, prefix in (("/proc/net/snmp", "Udp:"), ("/proc/net/snmp6", "Udp6SndbufErrors")):
        try:
            lines = [line.split() for line in Path(table).read_text().splitlines() if line.startswith(prefix)]
        except OSError:
            continue
        if prefix == "Udp:" and len(lines) == 2:
            total += int(dict(zip(lines[0][1:], lines[1][1:], strict=True)).get("SndbufErrors", 0))
        elif lines:
            total += int(lines[0][1])
    return total


class ReaderLag:
    """Whether some reader is falling behind, judged once a second: a reliable reader that left what
    was published unacknowledged for `samples` checks in a row, UDP datagrams dropped for a full
    send buffer since the last check (a network reader whose link cannot carry the topic), and
    stopped local readers (`find_stopped`)."""

    def __init__(self, publishers: Callable[[], list[TopicPublisher]], log: LogFn,
                 find_stopped: Callable[[], list[StoppedReader]], samples: int = 2, log_every_s: float = 30.0) -> None:
        self._publishers = publishers
        self._log = log
        self._samples = samples
        self._streak: dict[str, int] = {}
        self._throttle = Throttle(log_every_s)
        self._stopped_throttle = Throttle(log_every_s)
        self._find_stopped = find_stopped
        self._drops = udp_send_drops()
        self.drops_per_check = 0
        self.stopped: list[StoppedReader] = []

    def check(self) -> list[str]:
        """Update and return what is behind: topics with unacknowledging reliable readers, 'network'
        when UDP datagrams were dropped, and 'stopped local reader'."""
        behind = []
        for publisher in self._publishers():
            self._streak[publisher.topic] = self._streak.get(publisher.topic, 0) + 1 \
                if publisher.unacknowledged() else 0
            if self._streak[publisher.topic] >= self._samples:
                behind.append(publisher.topic)
        drops = udp_send_drops()
        self.drops_per_check, self._drops = drops - self._drops, drops
        if self.drops_per_check > 0:
            behind.append("network")
        if behind and self._throttle.ready():
            self._log("warn", f"a reader is falling behind ({', '.join(behind)}): it gets fewer frames; "
                              "every other reader still gets all of them")
        self.stopped = self._find_stopped()
        if self.stopped:
            behind.append("stopped local reader")
            if self._stopped_throttle.ready():
                self._log("warn", f"process {', '.join(map(str, self.stopped))} is stopped (SIGSTOP, Ctrl-Z or a "
                                  "debugger) while DDS writers on this host send to it: Fast DDS re-creates its "
                                  "shared-memory port for every fragment sent there, which slows the other readers "
                                  "of what it reads (image_raw: +40-65 ms) until that process is continued or ends")
        return behind

    def diagnostic_values(self, behind: list[str]) -> dict[str, str]:
        return {"readers_behind": ", ".join(behind) or "none",
                "udp_send_drops_per_s": str(self.drops_per_check),
                "stopped_local_readers": ", ".join(map(str, self.stopped)) or "none"}
