"""Runs the capture worker process, watches it, and replaces it when it stops delivering.

Why a process and not a thread: a VideoCapture stuck inside a driver or FFmpeg cannot be
interrupted safely from another thread (release() during a blocked read crashed 658 of 750
trials here), and a forked helper inherits FFmpeg's locks. A worker started with exec can be
SIGKILLed by PID at any moment; its replacement is already running (a warm spare), so
recovery takes milliseconds, not an interpreter start.
"""

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cam_guard.capture.controls import ControlValue
from cam_guard.capture.format_report import (
    MEASURE_AFTER_S,
    asked_text,
    differs_from_asked,
    granted_text,
    measured_text,
)
from cam_guard.capture.native_log import NativeLogRelay
from cam_guard.capture.sources import (
    CaptureSettings,
    SourceSpec,
    device_path,
    parse_source,
    video_devices,
    warmup_for,
)
from cam_guard.capture.v4l2_device import ControlRange
from cam_guard.capture.watchdog import CameraState, Watchdog, WatchdogConfig
from cam_guard.common.frame_ring import Frame, FrameRing, remove_stale_rings, ring_path
from cam_guard.common.lines import LineSplitter
from cam_guard.common.rate_meter import RateMeter
from cam_guard.common.startup import deferred_interrupts

_TERM_GRACE_S = 0.5  # a worker asked to stop gets this long to release the device, then SIGKILL
# A killed worker holding a V4L2 camera normally exits in milliseconds; one stuck in a USB driver
# (uninterruptible sleep) may never: the replacement waits this long for it, then opens anyway.
DEVICE_RELEASE_WAIT_S = 1.0
_REPLUG_POLL_S = 0.05  # while a V4L2 camera is gone, how often the back-off looks for its node


@dataclass
class CaptureStatus:
    state: CameraState
    reason: str
    source: str
    asked: str  # what the node asked of the source
    granted: str  # what the source said it would deliver
    measured: str  # what arrives, counted (empty during an open's first second)
    frames: int
    bad_frames: int
    torn_frames: int
    stalls: int
    reconnect_attempts: int
    recoveries: int
    frame_age_s: float | None
    rate_hz: float
    detect_s: tuple[float, float, float]  # last, median, worst
    recover_s: tuple[float, float, float]
    worker_pid: int | None = None
    recent_errors: list[str] = field(default_factory=list)
    unreaped_workers: int = 0  # killed workers still in the process table (stuck in the kernel)
    warmup_frames: int = 0  # good frames withheld while the camera settled after an open
    controls: dict[str, str] = field(default_factory=dict)  # per requested control: what the camera holds
    decoding: bool = True  # JPEG frames decoded (someone wants pixels) or only checked


class _Worker:
    """One capture worker process, the pipe we read its events from and the one its stderr goes to."""

    def __init__(self, ring_path: str, on_native_line: Callable[[str], None]) -> None:
        env = dict(os.environ)
        env.setdefault("OPENCV_LOG_LEVEL", "ERROR")  # FFmpeg timeouts are reported by us, once
        self.ring_path = ring_path
        with deferred_interrupts():  # the worker ignores Ctrl-C (its node stops it), from its first line
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "cam_guard.capture.worker"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, close_fds=True)
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._fd = self.proc.stdout.fileno()
        self._err_fd: int | None = self.proc.stderr.fileno()
        self._events = LineSplitter()
        self._native = LineSplitter()
        self._on_native_line = on_native_line
        self.last_native_line = ""  # what FFmpeg & co. said last: often why an open failed
        self.ring: FrameRing | None = None
        self.killed_at: float | None = None
        # Its last open failed and it waits for the next source: it holds no device and no ring.
        self.waiting = False

    def assign(self, source: SourceSpec, settings: CaptureSettings, decode: bool,
               controls: dict[str, ControlValue]) -> None:
        self.waiting = False
        self.last_native_line = ""  # a failed open's words are no cause of this one's failure
        self.command({"source": source.target, "settings": settings.__dict__, "ring_path": self.ring_path,
                      "decode": decode, "controls": controls})

    def command(self, message: dict[str, Any]) -> None:
        """One JSON line to the worker: a source to open, or a command for the one it streams from."""
        assert self.proc.stdin is not None
        with contextlib.suppress(BrokenPipeError):  # it exited: its replacement gets the settings anew
            self.proc.stdin.write((json.dumps(message) + "\n").encode())
            self.proc.stdin.flush()

    def events(self, timeout: float) -> list[dict[str, Any]] | None:
        """Events that arrived within `timeout`; None once the worker has exited (EOF)."""
        watched = [self._fd] if self._err_fd is None else [self._err_fd, self._fd]
        ready, _, _ = select.select(watched, [], [], max(0.0, timeout))
        if self._err_fd in ready:
            self._read_native()
        if self._fd not in ready:
            return []
        chunk = os.read(self._fd, 1 << 16)
        if not chunk:
            self.drain_native()
            return None
        return [json.loads(line) for line in self._events.feed(chunk) if line]

    def _read_native(self) -> bool:
        """Relay what one read of stderr gives; False at its end."""
        assert self._err_fd is not None
        chunk = os.read(self._err_fd, 1 << 16)
        if not chunk:
            self._err_fd = None
            return False
        for line in self._native.feed(chunk):
            if line.strip():
                self.last_native_line = line.strip()
                self._on_native_line(self.last_native_line)
        return True

    def drain_native(self) -> None:
        """Relay what stderr holds now (a worker's last words are written before it reports or exits)."""
        for _ in range(16):  # bounded: a live worker could keep writing
            if self._err_fd is None or not select.select([self._err_fd], [], [], 0)[0] or not self._read_native():
                return

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.killed_at = time.monotonic()
        self.release_ring()

    def wait_exit(self, timeout: float, stop: threading.Event) -> bool:
        """Until the process has exited (its files closed), at most `timeout` s or until `stop`; True if it has."""
        if self.proc.poll() is not None:
            return True
        # Our unreaped child: its PID cannot be reused, so the pidfd is this process's.
        fd = os.pidfd_open(self.proc.pid)
        try:
            deadline = time.monotonic() + timeout
            while (left := deadline - time.monotonic()) > 0 and not stop.is_set():
                if select.select([fd], [], [], min(left, 0.1))[0]:
                    return True
            return False
        finally:
            os.close(fd)

    def terminate(self, grace_s: float) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.release_ring()

    def release_ring(self) -> None:
        if self.ring is not None:
            self.ring.close()
            self.ring = None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.ring_path)
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                with contextlib.suppress(BrokenPipeError):
                    pipe.close()


def _failure(message: str, cause: str | None, worker: _Worker) -> str:
    """`message` and its cause; when the worker could not tell one (""), what its native libraries said
    last (FFmpeg: `Connection refused`, `HTTP error 404 Not Found`, `Failed to resolve hostname`)."""
    if cause == "":
        cause = worker.last_native_line
    return f"{message}: {cause}" if cause else message


def candidate_sources(device: str, fallback_devices: list[str], scan_video_devices: bool) -> list[SourceSpec]:
    """The primary source followed by what recovery may fall back to, without repeats.

    `auto` means the first video device present, or the synthetic source when there is none
    (decided once, here: a camera that dies later is never replaced by a synthetic picture).
    """
    if device == "auto":
        present = video_devices()
        device = present[0] if present else "synthetic"
    primary = parse_source(device)
    specs = [primary] + [parse_source(d) for d in fallback_devices]
    if scan_video_devices and primary.kind == "v4l2":
        specs += [parse_source(d) for d in video_devices()]
    unique: list[SourceSpec] = []
    for spec in specs:
        if spec not in unique:
            unique.append(spec)
    return unique


class CaptureSupervisor:
    def __init__(self, candidates: list[SourceSpec], settings: CaptureSettings, config: WatchdogConfig,
                 on_frame: Callable[[Frame], None],
                 log: Callable[[str, str], None] = lambda level, message: None,
                 on_state: Callable[[CameraState, str], None] = lambda state, reason: None,
                 warmup: float = -1.0) -> None:
        """`on_frame` gets every good frame past the warm-up; `on_state` every state transition, as it
        happens (a reconnect can take less than 50 ms: a poller would miss the STALLED in between).
        `warmup`: seconds of frames withheld after each open; negative = by kind of source."""
        if not candidates:
            raise ValueError("no source to capture from")
        self.candidates = candidates
        self.settings = settings
        self._warmup = warmup
        self._on_frame = on_frame
        self._log = log
        self._on_state = on_state
        self._reported_state: CameraState | None = None
        self._lock = threading.Lock()
        self._watchdog = Watchdog(config, time.monotonic())
        self._stop = threading.Event()
        self._wake = threading.Event()  # stop() or reconfigure(): the loop looks now, not after its back-off
        self._pending: tuple[list[SourceSpec], CaptureSettings, float] | None = None
        self.failed = threading.Event()
        self._thread = threading.Thread(target=self._run, name="capture-supervisor", daemon=True)
        self._spare: _Worker | None = None
        self._worker: _Worker | None = None
        self._killed: list[_Worker] = []  # SIGKILLed, not yet reaped: polled, never waited on
        self._ring_counter = 0
        self._current = 0
        self._asked = ""
        self._granted = ""
        self._frame_size = (0, 0)
        self._first_frame_at: float | None = None  # of the current open
        self._measured_logged = False
        self._bad_frames = 0
        self._torn_frames = 0
        self._rate = RateMeter(window_s=2.0)
        self._recent_errors: list[str] = []
        self._native_log = NativeLogRelay(lambda line: self._log("warn", f"native: {line}"))
        self._decode = True  # whether JPEG frames are decoded: someone wants pixels
        self._controls: dict[str, ControlValue] = {}  # what the camera is to hold, set at every open
        self._control_ranges: dict[str, ControlRange] = {}  # as the camera last reported them
        self._control_results: dict[str, str] = {}
        # A source that keeps failing is said once, then summarised with a count (not a warning per attempt).
        self._failed_attempts_log = NativeLogRelay(lambda message: self._log("warn", message))

    # -- public ------------------------------------------------------------------------------
    def start(self) -> None:
        for name in remove_stale_rings():
            self._log("info", f"removed {name}, left by a process that was killed")
        self._spare = self._new_worker()
        self._thread.start()

    def stop(self, timeout: float = 1.5) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=timeout)
        for worker in (self._worker, self._spare):
            if worker is not None:
                worker.terminate(_TERM_GRACE_S)
        self._reap()
        with self._lock:
            self._watchdog.stop()
        self._report_state()

    def set_decode(self, decode: bool) -> None:
        """Decode JPEG frames (True) or only check them (False: nobody wants pixels), from now on."""
        with self._lock:
            if decode == self._decode:
                return
            self._decode = decode
            if self._worker is not None:
                self._worker.command({"decode": decode})

    def set_controls(self, controls: dict[str, ControlValue]) -> None:
        """Camera controls to hold from now on, and at every open after (a replugged camera forgets them)."""
        with self._lock:
            self._controls = dict(controls)
            self._control_results = {}
            if self._worker is not None:
                self._worker.command({"controls": self._controls})

    def control_ranges(self) -> dict[str, ControlRange]:
        """The camera's control ranges as it reported them at the last open ({} before any)."""
        with self._lock:
            return dict(self._control_ranges)

    def reconfigure(self, candidates: list[SourceSpec], settings: CaptureSettings, warmup: float) -> None:
        """Capture with these settings from now on: the current worker is stopped (the device released)
        and a fresh one opens the first candidate (or the current one, when it waits after a failed open
        and so holds nothing); the state is RECONFIGURING until it delivers."""
        with self._lock:
            self._pending = (candidates, settings, warmup)
        self._wake.set()

    def set_watchdog(self, config: WatchdogConfig, settings: CaptureSettings) -> None:
        """New timings, in force for the very next deadline; `settings` (their open timeout) go with the
        next open, without restarting the current one."""
        with self._lock:
            self._watchdog.config = config
            self.settings = settings

    def status(self) -> CaptureStatus:
        now = time.monotonic()
        with self._lock:
            wd = self._watchdog
            worker = self._worker
            return CaptureStatus(
                state=wd.state, reason=wd.reason, source=str(self.candidates[self._current]),
                asked=self._asked, granted=self._granted, measured=self._measured(now),
                frames=wd.frames, bad_frames=self._bad_frames,
                torn_frames=self._torn_frames, stalls=wd.stalls, reconnect_attempts=wd.reconnect_attempts,
                recoveries=wd.recoveries, frame_age_s=wd.frame_age(now), rate_hz=self._rate.rate_hz(now),
                detect_s=wd.detect_summary(), recover_s=wd.recover_summary(),
                worker_pid=worker.proc.pid if worker else None, recent_errors=list(self._recent_errors),
                unreaped_workers=len(self._unreaped()),
                warmup_frames=wd.warmup_frames, decoding=self._decode,
                controls=dict(self._control_results))

    def _report_state(self) -> None:
        with self._lock:
            state, reason = self._watchdog.state, self._watchdog.reason
            if state is self._reported_state:
                return
            self._reported_state = state
        self._on_state(state, reason)

    # -- worker management -------------------------------------------------------------------
    def _new_worker(self) -> _Worker:
        self._ring_counter += 1
        return _Worker(ring_path("capture", self._ring_counter), self._native_log.line)

    def _retire(self, worker: _Worker) -> None:
        worker.kill()
        self._killed.append(worker)

    def _apply_pending(self) -> None:
        """Switch to reconfigure()'s settings, once the old worker has let go of the device."""
        with self._lock:
            pending, self._pending = self._pending, None
        if pending is None:
            return
        # A worker waiting after a failed open holds no device: it takes the new settings as its next source.
        if self._worker is not None and not self._worker.waiting and self._worker.proc.poll() is None:
            self._worker.terminate(_TERM_GRACE_S)  # a device is opened again at once: it must be free
            if self._worker.proc.poll() is None:
                self._killed.append(self._worker)
        with self._lock:
            self.candidates, self.settings, self._warmup = pending
            self._current = 0
            self._watchdog.on_reconfigure(time.monotonic())
        self._report_state()
        self._log("info", f"new capture settings: reopening {self.candidates[0]}")

    def _unreaped(self) -> list[_Worker]:
        """Killed workers still in the process table (stuck in the kernel); poll() reaps one that exited."""
        return [w for w in list(self._killed) if w.proc.poll() is None]

    def _reap(self) -> None:
        self._killed = self._unreaped()

    def _alive(self, worker: _Worker | None) -> _Worker | None:
        """`worker` while its process runs; one that exited is retired (its pipes closed) and None returned."""
        if worker is None or worker.proc.poll() is None:
            return worker
        self._retire(worker)
        return None

    def _launch(self, source: SourceSpec) -> _Worker:
        self._reap()
        # The worker whose open failed takes the next attempt: a new one costs an interpreter start and
        # `import cv2` (~0.55 s of CPU), once a second for as long as a camera is gone.
        worker = self._alive(self._worker if self._worker is not None and self._worker.waiting else None)
        spare_taken = worker is None
        if worker is None:
            worker = self._alive(self._spare) or self._new_worker()
        with self._lock:  # set_decode()/set_controls() reach either this worker's config or the worker
            worker.assign(source, self.settings, self._decode, self._controls)
            self._worker = worker
        if spare_taken:
            self._spare = self._new_worker()
        return worker

    # -- the loop ----------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            self._supervise()
        except Exception as exc:  # a dead supervisor must be loud: the node exits, the launcher respawns
            self._log("error", f"capture supervisor failed: {exc!r}")
            with self._lock:
                self._watchdog.fail(f"supervisor error: {exc!r}")
            self._report_state()
            self.failed.set()

    def _supervise(self) -> None:
        while not self._stop.is_set():
            self._apply_pending()
            source = self.candidates[self._current]
            with self._lock:
                self._watchdog.on_attempt(time.monotonic(), warmup_for(source, self._warmup))
            self._report_state()
            self._await_release(source)
            worker = self._launch(source)
            reason = self._stream(worker)
            if self._stop.is_set():
                return
            if self._pending is not None:
                continue  # reconfigure(): the loop's top hands the source to a fresh (or waiting) worker
            if not worker.waiting:
                self._retire(worker)  # never wait for it: it may be stuck in the kernel
            with self._lock:
                was_streaming = self._watchdog.state is CameraState.STREAMING
                self._watchdog.on_fault(time.monotonic(), reason)
                state, backoff = self._watchdog.state, self._watchdog.backoff()
                self._recent_errors = [*self._recent_errors, reason][-5:]
            self._report_state()
            if state is CameraState.FAILED:
                self._log("error", f"camera failed: {self._watchdog.reason}")
                self.failed.set()
                return
            if was_streaming:
                self._log("warn", f"{source}: {reason}; reconnecting")
            else:
                # Reopen the same source first; after that, walk the candidates in turn.
                self._current = (self._current + 1) % len(self.candidates)
                self._failed_attempts_log.line(f"{source}: {reason}; next try {self.candidates[self._current]} "
                                               f"in {backoff:.2f} s")
            if self._pause(backoff):
                return

    def _await_release(self, source: SourceSpec) -> None:
        """Before a V4L2 camera is opened: until the workers killed in the last DEVICE_RELEASE_WAIT_S are
        gone. uvcvideo lets one open file stream; a replacement opening while the killed worker still holds
        the camera gets EBUSY, and a back-off. (A network camera takes a second connection: no wait.)"""
        if source.kind != "v4l2":
            return
        for worker in self._killed:
            left = (worker.killed_at or 0.0) + DEVICE_RELEASE_WAIT_S - time.monotonic()
            if left > 0 and not worker.wait_exit(left, self._stop) and not self._stop.is_set():
                self._log("warn", f"killed capture worker pid {worker.proc.pid} has not exited after "
                                  f"{DEVICE_RELEASE_WAIT_S:.1f} s (stuck in the driver?); opening {source} anyway")
        self._reap()

    def _pause(self, backoff: float) -> bool:
        """The back-off before the next attempt; True when stopping. Meanwhile a V4L2 camera that is gone
        is looked for: when its node is back (the same one or, behind a by-id link, another), it is tried
        at once rather than after the back-off."""
        missing = [i for i, spec in enumerate(self.candidates)
                   if spec.kind == "v4l2" and not os.path.exists(device_path(spec))]
        deadline = time.monotonic() + backoff
        while (left := deadline - time.monotonic()) > 0:
            if self._wake.wait(min(left, _REPLUG_POLL_S) if missing else left):  # stop() or reconfigure()
                self._wake.clear()
                if self._stop.is_set() or self._pending is not None:
                    return self._stop.is_set()
            back = [i for i in missing if os.path.exists(device_path(self.candidates[i]))]
            if back:
                self._current = back[0]
                return False
        return self._stop.is_set()

    def _stream(self, worker: _Worker) -> str:
        """Forward frames until the worker stalls, fails or exits; returns why it ended."""
        while True:
            with self._lock:
                deadline = self._watchdog.deadline()
                streaming = self._watchdog.state is CameraState.STREAMING
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                if streaming:
                    return f"no frame for {self._watchdog.config.stall_timeout:.2f} s (stalled)"
                return f"no frame within {self._watchdog.config.open_timeout:.2f} s of opening"
            # Wake at least every 0.1 s so stop() is seen promptly.
            events = worker.events(min(remaining, 0.1))
            if self._killed:
                self._reap()
            if self._stop.is_set() or self._pending is not None:
                return "stopping"
            if events is None:
                code = worker.proc.poll()
                return _failure(f"capture worker exited (code {code})", "", worker)
            newest: dict[str, Any] | None = None
            for event in events:
                kind = event["event"]
                if kind == "frame":
                    newest = event  # older announced frames are already overwritten: skip them
                elif kind == "opened":
                    worker.ring = FrameRing.attach(event["ring"])
                    self._opened(event)
                elif kind == "controls":
                    self._controls_applied(event)
                elif kind == "bad_frame":
                    with self._lock:
                        self._bad_frames += 1
                elif kind == "error":
                    worker.drain_native()
                    worker.waiting = event.get("waiting", False)
                    return _failure(event["message"], event.get("cause"), worker)
            if newest is not None and worker.ring is not None:
                self._deliver(worker.ring, newest)

    def _opened(self, event: dict[str, Any]) -> None:
        source = self.candidates[self._current]
        granted = (event["width"], event["height"], event["fps"], event["fourcc"])
        with self._lock:
            self._asked = asked_text(source, self.settings)
            self._granted = granted_text(source, *granted)
            self._first_frame_at = None
            self._measured_logged = False
            self._rate = RateMeter(window_s=2.0)  # this open's frames only
        level = "warn" if differs_from_asked(source, self.settings, *granted) else "info"
        self._log(level, f"opened {source} via {event['backend']}: asked {self._asked}; granted {self._granted}")

    def _controls_applied(self, event: dict[str, Any]) -> None:
        with self._lock:
            self._control_ranges = {name: ControlRange(*r[:4], tuple(r[4])) for name, r in event["ranges"].items()}
            self._control_results = dict(event["results"])
        if event["results"]:
            failed = any(text.startswith(("not set", "refused")) for text in event["results"].values())
            self._log("warn" if failed else "info", "camera controls: " + ", ".join(
                f"{name} {text}" for name, text in event["results"].items()))

    def _measured(self, now: float) -> str:
        """What arrives, once the current open has delivered for a second (caller holds the lock)."""
        if self._first_frame_at is None or now - self._first_frame_at < MEASURE_AFTER_S:
            return ""
        return measured_text(*self._frame_size, self._rate.rate_hz(now))

    def _deliver(self, ring: FrameRing, event: dict[str, Any]) -> None:
        frame = ring.read(event["seq"])
        if frame is None:  # the worker lapped us while we copied
            with self._lock:
                self._torn_frames += 1
            return
        now = time.monotonic()
        with self._lock:
            settled = self._watchdog.on_frame(now)
            self._rate.add(now=now)
            self._frame_size = (frame.width, frame.height)
            if self._first_frame_at is None:
                self._first_frame_at = now
            measured = "" if self._measured_logged else self._measured(now)
            self._measured_logged = self._measured_logged or bool(measured)
        self._report_state()
        if measured:
            self._log("info", f"{self.candidates[self._current]}: measured {measured} over its first second")
        if settled:
            self._on_frame(frame)
