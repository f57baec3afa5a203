"""A camera whose source is gone is retried by one capture worker, not by a new interpreter per attempt
(issue 10: each start is ~0.55 s of CPU, taken from the other cameras); a worker killed in a hung open is
still replaced.

Real worker processes and real OpenCV against 127.0.0.1: a closed port (connection refused), a server
that comes back, a listener that never answers. Every worker interpreter records its PID as it starts (a
sitecustomize on the workers' PYTHONPATH): the processes the system started, whatever the supervisor thinks.
"""

import dataclasses
import os
import socket
import textwrap
import threading
from collections.abc import Callable

import pytest

from cam_guard.capture.sources import CaptureSettings, parse_source
from cam_guard.capture.supervisor import CaptureStatus, CaptureSupervisor
from cam_guard.capture.watchdog import CameraState, WatchdogConfig
from cam_guard.testing.fault_injection import MjpegFaultServer

ATTEMPTS = 6
WAIT_S = 30.0  # bounds every wait below; the attempts themselves take about a second
FAST_RETRY = {"backoff_initial": 0.01, "backoff_max": 0.05}
# Refused opens fail in milliseconds; the first one also waits for the worker's interpreter and cv2 import,
# seconds on a loaded machine: past open_timeout it would be killed as hung and replaced.
PATIENT = WatchdogConfig(open_timeout=WAIT_S / 2, **FAST_RETRY)

RECORD_START = textwrap.dedent("""
    import os, sys
    if "cam_guard.capture.worker" in sys.orig_argv:
        with open(os.environ["CAM_GUARD_TEST_WORKER_STARTS"], "a") as f:
            f.write(f"{os.getpid()}\\n")
""")


@pytest.fixture
def worker_starts(tmp_path, monkeypatch) -> Callable[[], list[int]]:
    """The PIDs of the capture workers started from now on (read when called)."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(RECORD_START)
    starts = tmp_path / "worker-starts"
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH")) if p))
    monkeypatch.setenv("CAM_GUARD_TEST_WORKER_STARTS", str(starts))
    return lambda: [int(pid) for pid in starts.read_text().split()] if starts.exists() else []


class Reconnecting:
    """`on_state` for a supervisor: notes the worker whose attempt just failed as the camera turns RECONNECTING."""

    def __init__(self) -> None:
        self.supervisor: CaptureSupervisor | None = None
        self.failed_pid: int | None = None
        self.seen = threading.Event()

    def on_state(self, state: CameraState, _reason: str) -> None:
        if state is CameraState.RECONNECTING and self.supervisor is not None:
            self.failed_pid = self.supervisor.status().worker_pid
            self.seen.set()


def until_it_gives_up(supervisor: CaptureSupervisor) -> CaptureStatus:
    """Run `supervisor` until it reaches max_attempts; its status then."""
    supervisor.start()
    try:
        assert supervisor.failed.wait(WAIT_S), supervisor.status()
        return supervisor.status()
    finally:
        supervisor.stop()


def test_a_source_that_refuses_every_open_is_retried_by_one_worker(worker_starts):
    with MjpegFaultServer() as gone:
        url = gone.url  # nobody listens there once the server stopped
    config = dataclasses.replace(PATIENT, max_attempts=ATTEMPTS)
    status = until_it_gives_up(CaptureSupervisor([parse_source(url)], CaptureSettings(), config,
                                                  on_frame=lambda _: None))
    starts = worker_starts()
    assert status.state is CameraState.FAILED and status.reconnect_attempts == ATTEMPTS - 1, status
    assert "Connection refused" in status.reason, status.reason  # FFmpeg's words, relayed at each attempt
    # The worker that took all the attempts, and the spare that waited beside it (old: one start per attempt).
    assert status.worker_pid in starts and len(starts) <= 2, starts


def test_the_worker_whose_open_failed_streams_once_the_source_is_back(worker_starts):
    server = MjpegFaultServer(320, 240, 30)
    url = server.start()
    port = server.port
    server.stop()
    reconnecting = Reconnecting()
    frame = threading.Event()
    supervisor = CaptureSupervisor([parse_source(url)], CaptureSettings(width=320, height=240),
                                   PATIENT, on_frame=lambda _: frame.set(),
                                   on_state=reconnecting.on_state)
    reconnecting.supervisor = supervisor
    supervisor.set_controls({"gain": 30})
    supervisor.start()
    try:
        assert reconnecting.seen.wait(WAIT_S), supervisor.status()
        server.start(port=port)
        assert frame.wait(WAIT_S), supervisor.status()
        status = supervisor.status()
    finally:
        supervisor.stop()
        server.stop()
    assert status.worker_pid == reconnecting.failed_pid, "the worker whose open failed opens the next attempt"
    # Controls are set at every open, a reused worker's too (an HTTP source has none to set).
    assert status.controls["gain"].startswith("not set: "), status.controls
    assert len(worker_starts()) <= 2


def test_a_worker_killed_in_a_hung_open_is_replaced(worker_starts):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)  # accepts into its backlog, never answers: every open hangs
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/stream.mjpg"
    reconnecting = Reconnecting()
    supervisor = CaptureSupervisor([parse_source(url)], CaptureSettings(open_timeout_ms=10_000),
                                   WatchdogConfig(open_timeout=0.5, max_attempts=2, **FAST_RETRY),
                                   on_frame=lambda _: None, on_state=reconnecting.on_state)
    reconnecting.supervisor = supervisor
    try:
        status = until_it_gives_up(supervisor)
    finally:
        listener.close()
    assert "no frame within 0.50 s of opening" in status.reason, status.reason
    assert reconnecting.failed_pid is not None and status.worker_pid != reconnecting.failed_pid, \
        "a worker stuck in an open is never given another source"
    assert {reconnecting.failed_pid, status.worker_pid} <= set(worker_starts())
