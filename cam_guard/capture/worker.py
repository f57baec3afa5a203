"""The capture worker: a process of its own that owns one OpenCV capture and nothing else.

Started with subprocess (exec, never fork) by `CaptureSupervisor`, it imports OpenCV, then waits
for a JSON line on stdin naming the source (so a spare can be started ahead of need); later lines
are commands (`{"decode": false}`: check JPEG frames without decoding them; `{"controls": {...}}`:
the camera controls to hold now). When the source cannot be opened it says so and waits for the
next source line (commands meanwhile are superseded by it): a camera that is gone is retried by one
worker instead of a new interpreter (~0.55 s of CPU) per attempt. It writes frames into a
`FrameRing` and one JSON line per event on stdout:

    {"event": "opened", "width":…, "height":…, "fps":…, "fourcc":…, "backend":…, "compressed":…, "ring":…}
                                           (what the source granted; each frame's own size is in the ring)
    {"event": "frame", "seq":…}            (the frame itself, its stamp and size are in the ring)
    {"event": "controls", "ranges": {name: [min, max, step, default, menu]}, "results": {name: what it holds}}
    {"event": "bad_frame", "reason":…}
    {"event": "error", "message":…, "cause":…, "waiting":…}   (cause: why, as far as the system says;
                                           "" when it cannot tell, absent when not asked; waiting: true
                                           when the open failed and it waits for the next source, else
                                           it exits non-zero)

Native libraries (FFmpeg) print to this process's stderr, a pipe the supervisor relays to the log.

The supervisor kills it with SIGKILL when it stops delivering; nothing here has to be
interruptible, which is the point: a read stuck inside a driver cannot take the node with it.
"""

import json
import os
import select
import signal
import sys
import time
from typing import Any, TextIO

import cv2

from cam_guard.capture.controls import ControlValue, apply_controls
from cam_guard.capture.sources import (
    CaptureSettings,
    CaptureSource,
    SourceSpec,
    device_path,
    explain_failure,
    parse_source,
)
from cam_guard.common import fork_audit
from cam_guard.common.child_process import die_with_parent
from cam_guard.common.frame_ring import FrameRing
from cam_guard.common.lines import LineSplitter

# A source that delivers nothing but failures this many times in a row is gone.
_MAX_CONSECUTIVE_FAILURES = 3


_channel: TextIO = sys.stdout  # the event pipe to the supervisor (see _own_event_channel)


def _send(event: dict[str, Any]) -> None:
    _channel.write(json.dumps(event, separators=(",", ":")) + "\n")
    _channel.flush()


def _own_event_channel() -> None:
    """Keep the event pipe to ourselves: OpenCV logs to stdout below WARN (OPENCV_LOG_LEVEL=DEBUG), which
    would interleave with the event lines; whatever native code prints on stdout goes to stderr instead."""
    global _channel
    _channel = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())


class _Commands:
    """JSON lines on stdin, read without a buffer of Python's (which could swallow later lines)."""

    def __init__(self) -> None:
        self._lines = LineSplitter()
        self._pending: list[str] = []
        self.closed = False

    def _read(self) -> None:
        chunk = os.read(0, 1 << 16)
        self.closed = not chunk
        self._pending += [line for line in self._lines.feed(chunk) if line.strip()]

    def next_source(self) -> dict[str, Any] | None:
        """The next source to open; None once the supervisor closed stdin (an unneeded spare, or a worker
        waiting after a failed open). Commands before it are skipped: the source line carries their values."""
        while True:
            while not self._pending and not self.closed:
                self._read()
            if not self._pending:
                return None
            message: dict[str, Any] = json.loads(self._pending.pop(0))
            if "source" in message:
                return message

    def new(self) -> list[dict[str, Any]]:
        """Commands that arrived since the last call (never blocks)."""
        while not self.closed and select.select([0], [], [], 0)[0]:
            self._read()
        commands, self._pending = self._pending, []
        return [json.loads(line) for line in commands]


class CameraControls:
    """The camera's controls through a file of our own: uvcvideo takes controls from any open file."""

    def __init__(self, spec: SourceSpec) -> None:
        self._fd = -1
        self._unusable = f"{spec} is no V4L2 camera"
        if spec.kind == "v4l2":
            try:
                self._fd = os.open(os.path.realpath(device_path(spec)), os.O_RDWR | os.O_NONBLOCK)
            except OSError as exc:  # gone since OpenCV opened it: the first read says so
                self._unusable = exc.strerror or str(exc)

    def apply(self, requests: dict[str, ControlValue]) -> None:
        if self._fd < 0:
            if requests:
                _send({"event": "controls", "ranges": {},
                       "results": {name: f"not set: {self._unusable}" for name in requests}})
            return
        try:
            ranges, results = apply_controls(self._fd, requests)
        except OSError as exc:  # the camera went away: the next read says so
            results = {name: f"not set: {exc.strerror}" for name in requests}
            ranges = {}
        _send({"event": "controls", "results": results,
               "ranges": {name: [r.minimum, r.maximum, r.step, r.default, list(r.menu)] for name, r in ranges.items()}})

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)


def open_source(config: dict[str, Any]) -> CaptureSource | None:
    """The source `config` names, opened; None when it cannot be, said in an error event (the open
    released whatever it had: this process may open the next source)."""
    settings = CaptureSettings(**config["settings"])
    spec = parse_source(config["source"])
    try:
        return CaptureSource(spec, settings, config["decode"])
    except ValueError as exc:  # the credentials went missing since the node checked them
        _send({"event": "error", "message": str(exc), "waiting": True})
    except EOFError as exc:
        _send({"event": "error", "message": str(exc), "cause": explain_failure(spec, settings), "waiting": True})
    return None


def run(config: dict[str, Any], source: CaptureSource, commands: _Commands) -> int:
    controls = CameraControls(source.spec)
    controls.apply(config["controls"])
    ring: FrameRing | None = None
    failures = 0
    try:
        while True:
            for command in commands.new():
                source.decode = command.get("decode", source.decode)
                if "controls" in command:
                    controls.apply(command["controls"])
            try:
                frame = source.read()
            except EOFError as exc:
                failures += 1
                if failures >= _MAX_CONSECUTIVE_FAILURES:
                    # Only the final failure is explained: that asks the kernel and scans /proc.
                    _send({"event": "error", "message": str(exc),
                           "cause": explain_failure(source.spec, source.settings)})
                    return 4
                time.sleep(0.01)  # a dead FFmpeg capture fails in ~0 ms: don't spin a core
                continue
            except ValueError as exc:
                _send({"event": "bad_frame", "reason": str(exc)})
                continue
            stamp_ns = time.time_ns()
            failures = 0
            if ring is None:
                # Sized from the first real frame: the negotiated size is only trustworthy then.
                pixels = frame.image.nbytes if frame.image is not None else frame.width * frame.height * 3
                ring = FrameRing.create(config["ring_path"], pixels, pixels + 65536)
                fmt = source.format
                _send({"event": "opened", "width": fmt.width, "height": fmt.height,
                       "fps": fmt.fps, "fourcc": fmt.fourcc, "backend": fmt.backend,
                       "compressed": fmt.compressed, "ring": ring.path})
            try:
                if frame.image is None:
                    assert frame.jpeg is not None
                    seq = ring.write_jpeg_only(frame.jpeg, frame.width, frame.height, stamp_ns)
                else:
                    seq = ring.write(frame.image, frame.jpeg, stamp_ns)
            except ValueError as exc:  # the source changed size under us: reopen
                _send({"event": "error", "message": str(exc)})
                return 5
            _send({"event": "frame", "seq": seq})
    except BrokenPipeError:
        return 0  # the supervisor went away
    finally:
        source.release()
        controls.close()
        if ring is not None:
            ring.close()


def main() -> int:
    fork_audit.install_from_env()
    die_with_parent()
    _own_event_channel()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    cv2.setNumThreads(1)  # decoding one frame at a time; threads would only fight the node
    commands = _Commands()
    while (config := commands.next_source()) is not None:
        source = open_source(config)
        if source is not None:
            return run(config, source, commands)
    return 0  # stdin closed: a spare that was never needed, or let go after a failed open


if __name__ == "__main__":
    sys.exit(main())  # Ctrl-C is ignored here (common/startup.py): the node stops its workers
