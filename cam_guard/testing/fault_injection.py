"""Cameras that fail for real, for the fault-injection tests, the benchmarks and users.

- `MjpegFaultServer`: MJPEG over HTTP on 127.0.0.1 that can stall, slow down, corrupt, drop and
  restart. OpenCV's FFmpeg backend blocks on it the way it does on a network camera.
- `FfmpegMjpegServer`: ffmpeg's own MJPEG-over-HTTP server replaying given frames byte for byte: a
  third party's framing, to check we do not only understand our own server.
- `FifoCamera`: MJPEG into a named pipe; when it goes quiet the reader blocks in read(2) in the
  kernel, where no FFmpeg timeout applies, as with a wedged USB driver.

`python -m cam_guard.testing.fault_injection` serves an MjpegFaultServer whose faults are typed
on stdin (or piped in as a script), to rehearse faults against one's own setup.
"""

import argparse
import base64
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np

from cam_guard.capture.synthetic import synthetic_frame
from cam_guard.common.startup import INTERRUPTS

BOUNDARY = "cam_guard_frame"


def synthetic_jpeg(index: int, width: int, height: int, quality: int = 80) -> bytes:
    """Frame `index` of the synthetic pattern (its number readable in the pixels) as JPEG."""
    ok, data = cv2.imencode(".jpg", synthetic_frame(index, width, height), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return data.tobytes()


class MjpegFaultServer:
    """Serves a synthetic MJPEG stream at http://127.0.0.1:<port><path>.

    Faults are switched at run time: `stall()` keeps connections open but sends nothing,
    `slow(interval)` sends frames at a crawl, `corrupt(n)` sends n frames of garbage bytes,
    `truncate()` sends half a frame then stalls, `pad()` appends bytes after each frame's EOI,
    `drop()` closes every connection, `stop()` takes the server away and `start()` brings it back
    (optionally on another port or path).
    """

    def __init__(self, width: int = 640, height: int = 480, fps: float = 30.0,
                 path: str = "/stream.mjpg", quality: int = 80, cycle_frames: int = 0,
                 credentials: tuple[str, str] | None = None) -> None:
        """`cycle_frames` > 0 pre-encodes that many frames and repeats them (cheap, for benchmarks);
        0 encodes every frame, so the frame number in the pixels is exact (for tests).
        `credentials` (user, password): answer 401 unless the request carries them (HTTP basic auth)."""
        self.width = width
        self.height = height
        self.fps = fps
        self.path = path
        self.quality = quality
        self.frames_sent = 0
        self.request_seen = threading.Event()  # set by each stream request: an open is under way
        self._authorization = None if credentials is None else \
            "Basic " + base64.b64encode(":".join(credentials).encode()).decode()
        self.rejected_requests = 0  # requests without the right credentials
        self.open_streams = 0  # connections being streamed to right now
        self._lock = threading.Lock()
        self._flowing = threading.Event()
        self._flowing.set()
        self._interval_override: float | None = None
        self._corrupt_left = 0
        self._truncate_next = False
        self._padding: tuple[int, int, bytes] | None = None
        self._generation = 0  # bumped by drop(): handlers of older generations hang up
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.cycle_frames = cycle_frames
        self._frame_cache: dict[int, bytes] = {}
        self.recent_jpegs: deque[bytes] = deque(maxlen=256)  # what was sent (padding included), newest last
        self.sent_at: dict[int, float] = {}  # frame number -> time.time() it was written (last 1000)

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self, port: int = 0, path: str | None = None) -> str:
        """Listen on 127.0.0.1 (port 0 picks a free one) and return the stream URL."""
        if path is not None:
            self.path = path
        self._flowing.set()
        server = ThreadingHTTPServer(("127.0.0.1", port), self._handler_class())
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="mjpeg-fault-server", daemon=True)
        self._thread.start()
        return self.url

    def stop(self) -> None:
        """Take the camera away: stop listening and hang up on every client."""
        server, self._server = self._server, None
        self.drop()
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("server is not running")
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    def __enter__(self) -> "MjpegFaultServer":
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # -- faults ------------------------------------------------------------------------------
    def stall(self) -> None:
        self._flowing.clear()

    def resume(self) -> None:
        with self._lock:
            self._interval_override = None
        self._flowing.set()

    def slow(self, interval_s: float) -> None:
        with self._lock:
            self._interval_override = interval_s

    def corrupt(self, frames: int) -> None:
        with self._lock:
            self._corrupt_left = frames

    def truncate(self) -> None:
        with self._lock:
            self._truncate_next = True

    def pad(self, min_bytes: int, max_bytes: int, fill: bytes = b"\0") -> None:
        """From now on append `min_bytes`..`max_bytes` bytes of `fill` after each frame's EOI, inside the
        part (its Content-Length counts them), as hardware encoders do; `unpad()` stops it."""
        with self._lock:
            self._padding = (min_bytes, max_bytes, fill)

    def unpad(self) -> None:
        with self._lock:
            self._padding = None

    def drop(self) -> None:
        with self._lock:
            self._generation += 1
        self._flowing.set()  # wake stalled handlers so they notice and hang up

    # -- streaming ---------------------------------------------------------------------------
    def _jpeg(self, index: int) -> bytes:
        if not self.cycle_frames:
            return synthetic_jpeg(index, self.width, self.height, self.quality)
        key = index % self.cycle_frames
        if key not in self._frame_cache:
            self._frame_cache[key] = synthetic_jpeg(key, self.width, self.height, self.quality)
        return self._frame_cache[key]

    def _next_payload(self) -> tuple[int, bytes, bool]:
        with self._lock:
            index = self.frames_sent
            self.frames_sent += 1
            if self._corrupt_left > 0:
                self._corrupt_left -= 1
                return index, scramble_entropy_data(self._jpeg(index), np.random.default_rng(index)), False
            truncate, self._truncate_next = self._truncate_next, False
            padding = self._padding
        jpeg = self._jpeg(index)
        if padding is not None:
            low, high, fill = padding
            size = low + index * 7919 % (high - low + 1)  # varies frame to frame, reproducibly
            jpeg += (fill * (size // len(fill) + 1))[:size]
        return index, jpeg, truncate

    def _interval(self) -> float:
        with self._lock:
            return self._interval_override if self._interval_override is not None else 1.0 / self.fps

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: object) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:
                if self.path != owner.path:
                    self.send_error(404)
                    return
                if owner._authorization is not None and self.headers.get("Authorization") != owner._authorization:
                    owner.rejected_requests += 1
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="camera"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                generation = owner._generation
                owner.request_seen.set()
                self.send_response(200)
                self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
                self.send_header("Cache-Control", "no-cache")
                self.end_headers()
                next_due = time.monotonic()
                with owner._lock:
                    owner.open_streams += 1
                try:
                    while generation == owner._generation and owner._server is not None:
                        if not owner._flowing.wait(timeout=0.1):
                            continue
                        if generation != owner._generation:
                            break
                        index, payload, truncate = owner._next_payload()
                        head = (f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                                f"Content-Length: {len(payload)}\r\n\r\n").encode()
                        if truncate:
                            self.wfile.write(head + payload[: len(payload) // 2])
                            self.wfile.flush()
                            owner.stall()
                            continue
                        self.wfile.write(head + payload + b"\r\n")
                        self.wfile.flush()
                        owner.recent_jpegs.append(payload)
                        owner.sent_at[index] = time.time()
                        owner.sent_at.pop(index - 1000, None)
                        next_due += owner._interval()
                        delay = next_due - time.monotonic()
                        if delay > 0:
                            time.sleep(delay)
                        else:
                            next_due = time.monotonic()
                except (TimeoutError, BrokenPipeError, ConnectionResetError):
                    return
                finally:
                    self.close_connection = True
                    with owner._lock:
                        owner.open_streams -= 1

        return Handler


def scramble_entropy_data(jpeg: bytes, rng: np.random.Generator) -> bytes:
    """`jpeg` with its markers kept but the middle of its entropy-coded data replaced by noise."""
    body = bytearray(jpeg)
    middle = slice(len(body) // 3, len(body) - 2)
    body[middle] = rng.integers(0, 256, len(body[middle]), dtype=np.uint8).tobytes()
    return bytes(body)


class FfmpegMjpegServer:
    """`ffmpeg -f mpjpeg -listen 1`: serves `frames` in a loop at `fps` to one client, each frame's
    bytes as given (padding after EOI included: ffmpeg's MJPEG parser splits at the next SOI)."""

    def __init__(self, frames: list[bytes], fps: float = 30.0) -> None:
        if shutil.which("ffmpeg") is None:
            raise RuntimeError("ffmpeg is not installed (Debian package ffmpeg)")
        self._dir = tempfile.TemporaryDirectory(prefix="cam_guard-ffmpeg-")
        source = Path(self._dir.name) / "frames.mjpg"
        source.write_bytes(b"".join(frames))
        with socket.socket() as probe:  # a free port; ffmpeg binds it a moment later
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/stream.mjpg"
        self._log = open(Path(self._dir.name) / "ffmpeg.log", "wb")  # noqa: SIM115 (closed in close())
        self.proc = subprocess.Popen(
            ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-re", "-stream_loop", "-1",
             "-f", "mjpeg", "-framerate", str(fps), "-i", str(source), "-c", "copy", "-f", "mpjpeg",
             "-content_type", "multipart/x-mixed-replace;boundary=ffmpeg", "-listen", "1", self.url],
            stdout=subprocess.DEVNULL, stderr=self._log)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=5)
        self._log.close()
        self._dir.cleanup()

    def __enter__(self) -> "FfmpegMjpegServer":
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


class FifoCamera:
    """MJPEG frames written into a named pipe: when the writer goes quiet, the reader blocks
    inside read(2) in the kernel, where no FFmpeg timeout applies (only killing the reader helps)."""

    def __init__(self, path: Path) -> None:
        os.mkfifo(path)
        self.path = path
        self.flowing = threading.Event()
        self.flowing.set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._write, daemon=True)
        self._thread.start()

    def _write(self) -> None:
        fd = os.open(self.path, os.O_RDWR)  # read-write: open() does not wait for a reader
        index = 0
        try:
            while not self._stop.wait(1 / 30):
                if self.flowing.is_set():
                    with contextlib.suppress(BrokenPipeError):
                        os.write(fd, cv2.imencode(".jpg", synthetic_frame(index, 320, 240))[1].tobytes())
                    index += 1
        finally:
            os.close(fd)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


USAGE = """commands (one per line; Ctrl-C quits):
  stall            keep connections open, send nothing
  resume           back to normal (ends stall and slow)
  slow SECONDS     one frame every SECONDS
  corrupt N        the next N frames are garbage
  truncate         half a frame, then stall
  drop             hang up on every client
  stop             take the camera away (connection refused)
  start            bring it back on the same port
  sleep SECONDS    wait (for scripts piped into stdin)
  quit"""


def run_command(server: MjpegFaultServer, port: int, line: str) -> str:
    """Apply one command line to `server` (which `start` brings back on `port`); returns what to print."""
    words = line.split()
    if not words:
        return ""
    name, args = words[0], words[1:]
    simple = {"stall": server.stall, "resume": server.resume, "truncate": server.truncate, "drop": server.drop,
              "stop": server.stop}
    try:
        if name in simple and not args:
            simple[name]()
        elif name == "start" and not args:
            server.start(port)
        elif name == "slow" and len(args) == 1:
            server.slow(float(args[0]))
        elif name == "corrupt" and len(args) == 1:
            server.corrupt(int(args[0]))
        elif name == "sleep" and len(args) == 1:
            time.sleep(float(args[0]))
        else:
            return f"unknown command '{line.strip()}'\n{USAGE}"
    except (ValueError, OSError) as exc:
        return f"{name} failed: {exc}"
    return f"ok: {line.strip()}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cam_guard.testing.fault_injection",
        description="Serve a synthetic MJPEG camera on 127.0.0.1 whose faults you switch from stdin, to rehearse "
                    "how your camera_node, reward_node and trainer behave (device:=<the printed URL>).",
        epilog=USAGE, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=8090, help="0 picks a free port (default 8090)")
    parser.add_argument("--path", default="/stream.mjpg")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--fps", type=float, default=30.0)
    args = parser.parse_args(argv)
    # Ctrl-C and SIGTERM end it even when its parent left them ignored or blocked (a background job, a thread
    # that blocked them): it failed to stop in a full test run.
    for sig in INTERRUPTS:
        signal.signal(sig, signal.default_int_handler)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, INTERRUPTS)
    server = MjpegFaultServer(args.width, args.height, args.fps, args.path)
    try:
        print(f"serving {server.start(args.port)}", flush=True)
        port = server.port  # `start` after `stop` comes back here, even when --port 0 picked it
        for line in sys.stdin:
            if line.strip() == "quit":
                break
            if reply := run_command(server, port, line):
                print(reply, flush=True)
        else:  # stdin closed (a piped script ended): keep serving until Ctrl-C
            signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
