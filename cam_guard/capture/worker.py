"""The capture worker: a process of its own that owns one OpenCV capture and nothing else.

Started with subprocess (exec, never fork) by `CaptureSupervisor`, it imports OpenCV, then waits
for one JSON line on stdin naming the source (so a spare can be started ahead of need). It then
writes frames into a `FrameRing` and one JSON line per event on stdout:

    {"event": "opened", "width":…, "height":…, "fps":…, "fourcc":…, "backend":…, "compressed":…, "ring":…}
                                           (what the source granted; each frame's own size is in the ring)
    {"event": "frame", "seq":…}            (the frame itself, its stamp and size are in the ring)
    {"event": "bad_frame", "reason":…}
    {"event": "error", "message":…}        (then it exits non-zero; the message says why where it can)

Native libraries (FFmpeg) print to this process's stderr, a pipe the supervisor relays to the log.

The supervisor kills it with SIGKILL when it stops delivering; nothing here has to be
interruptible, which is the point: a read stuck inside a driver cannot take the node with it.
"""

import json
import signal
import sys
import time
from typing import Any

import cv2

from cam_guard.capture.sources import CaptureSettings, CaptureSource, SourceSpec, explain_failure, parse_source
from cam_guard.common import fork_audit
from cam_guard.common.child_process import die_with_parent
from cam_guard.common.frame_ring import FrameRing

# A source that delivers nothing but failures this many times in a row is gone.
_MAX_CONSECUTIVE_FAILURES = 3


def _send(event: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(event, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def _with_cause(message: str, spec: SourceSpec, settings: CaptureSettings) -> str:
    cause = explain_failure(spec, settings)
    return f"{message}: {cause}" if cause else message


def run(config: dict[str, Any]) -> int:
    settings = CaptureSettings(**config["settings"])
    spec = parse_source(config["source"])
    try:
        source = CaptureSource(spec, settings)
    except EOFError as exc:
        _send({"event": "error", "message": _with_cause(str(exc), spec, settings)})
        return 3
    ring: FrameRing | None = None
    failures = 0
    try:
        while True:
            try:
                image, jpeg = source.read()
            except EOFError as exc:
                failures += 1
                if failures >= _MAX_CONSECUTIVE_FAILURES:
                    # Only the final failure is explained: that asks the kernel and scans /proc.
                    _send({"event": "error", "message": _with_cause(str(exc), spec, settings)})
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
                ring = FrameRing.create(config["ring_path"], image.nbytes, image.nbytes + 65536)
                fmt = source.format
                _send({"event": "opened", "width": fmt.width, "height": fmt.height,
                       "fps": fmt.fps, "fourcc": fmt.fourcc, "backend": fmt.backend,
                       "compressed": fmt.compressed, "ring": ring.path})
            try:
                seq = ring.write(image, jpeg, stamp_ns)
            except ValueError as exc:  # the source changed size under us: reopen
                _send({"event": "error", "message": str(exc)})
                return 5
            _send({"event": "frame", "seq": seq})
    except BrokenPipeError:
        return 0  # the supervisor went away
    finally:
        source.release()
        if ring is not None:
            ring.close()


def main() -> int:
    fork_audit.install_from_env()
    die_with_parent()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    cv2.setNumThreads(1)  # decoding one frame at a time; threads would only fight the node
    line = sys.stdin.readline()
    if not line.strip():
        return 0  # a spare that was never needed
    return run(json.loads(line))


if __name__ == "__main__":
    sys.exit(main())  # Ctrl-C is ignored here (common/startup.py): the node stops its workers
