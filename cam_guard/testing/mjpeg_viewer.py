"""MJPEG viewers for tests and benches: clients of preview_node's /stream.mjpg that read as fast as
they can, or connect and stop reading (a stalled browser tab, a dead SSH tunnel).

    python -m cam_guard.testing.mjpeg_viewer URL [--viewers 5] [--stalled 1]

runs them in a process of its own until stdin closes, then prints one line per viewer
("reader N frames" / "stalled N frames"); ViewerProcess does that from a test or bench.
"""

import argparse
import contextlib
import socket
import subprocess
import sys
import threading
from urllib.parse import urlsplit

STALLED_RCVBUF = 4096  # small, so the server's send blocks after a frame or two


class MjpegViewer:
    """One connection to a multipart MJPEG stream, read in a thread of its own (unless `stall`)."""

    def __init__(self, url: str, *, stall: bool = False, timeout: float = 10.0) -> None:
        parts = urlsplit(url)
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if stall:  # before connect(): the receive window is negotiated then
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, STALLED_RCVBUF)
        self._sock.settimeout(timeout)
        self._sock.connect((parts.hostname or "127.0.0.1", parts.port or 80))
        self._sock.sendall(f"GET {parts.path or '/'} HTTP/1.1\r\nHost: {parts.netloc}\r\n\r\n".encode())
        self._reader = self._sock.makefile("rb")
        self._cond = threading.Condition()
        self.frames = 0
        self.headers: dict[str, str] = {}
        self.last_jpeg = b""
        self.part_headers: dict[str, str] = {}
        self.error: Exception | None = None
        self.stalled = stall
        self._closing = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        if not stall:
            self._thread.start()

    def _read_headers(self) -> dict[str, str]:
        headers = {}
        while (line := self._reader.readline(4096).decode("latin-1").strip()):
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
        return headers

    def _run(self) -> None:
        try:
            status = self._reader.readline(4096).decode("latin-1")
            if " 200 " not in status:
                raise ConnectionError(f"stream refused: {status.strip()}")
            self.headers = self._read_headers()
            boundary = self.headers["content-type"].split("boundary=", 1)[1].strip()
            while True:
                line = self._reader.readline(4096)
                if not line:
                    return  # the server closed the stream
                if line.strip() != f"--{boundary}".encode():
                    continue
                headers = self._read_headers()
                jpeg = self._reader.read(int(headers["content-length"]))
                with self._cond:
                    self.frames += 1
                    self.last_jpeg, self.part_headers = jpeg, headers
                    self._cond.notify_all()
        except (OSError, ValueError, KeyError, IndexError) as exc:
            if not self._closing:
                self.error = exc
        finally:
            with self._cond:
                self._cond.notify_all()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def wait_frames(self, count: int, timeout: float) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: self.frames >= count or not self.running, timeout):
                raise AssertionError(f"{self.frames} of {count} MJPEG frames after {timeout} s")
            if self.frames < count:
                raise AssertionError(f"stream ended after {self.frames} of {count} frames: {self.error}")

    def close(self) -> None:
        self._closing = True
        with contextlib.suppress(OSError):  # the server may have closed it already
            self._sock.shutdown(socket.SHUT_RDWR)  # wakes the reader thread
        if not self.stalled:
            self._thread.join(timeout=5)
        self._reader.close()
        self._sock.close()


class ViewerProcess:
    """`readers` + `stalled` viewers of `url` in a process of their own (so that they compete with
    the preview node for the CPU as a browser would, not with the test's own subscriptions)."""

    def __init__(self, url: str, readers: int, stalled: int) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", __name__, url, "--viewers", str(readers),
                                      "--stalled", str(stalled)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True)
        assert self.proc.stdin is not None and self.proc.stdout is not None
        line = self.proc.stdout.readline()  # each viewer connects with a 10 s timeout, or the process exits
        if line.strip() != "connected":
            self.proc.kill()
            raise AssertionError(f"viewers did not connect: {line!r}")

    def stop(self) -> dict[str, list[int]]:
        """Frames each viewer received: {"reader": [...], "stalled": [...]}."""
        output, _ = self.proc.communicate(input="", timeout=30)
        frames: dict[str, list[int]] = {"reader": [], "stalled": []}
        for line in output.splitlines():
            kind, count, _ = line.split()
            frames[kind].append(int(count))
        return frames

    def __enter__(self) -> "ViewerProcess":
        return self

    def __exit__(self, *_exc: object) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="mjpeg_viewer", description=__doc__.split("\n\n")[0])
    parser.add_argument("url")
    parser.add_argument("--viewers", type=int, default=5, help="viewers that read as fast as they can")
    parser.add_argument("--stalled", type=int, default=1, help="viewers that connect and stop reading")
    args = parser.parse_args(argv)
    viewers = [MjpegViewer(args.url) for _ in range(args.viewers)]
    viewers += [MjpegViewer(args.url, stall=True) for _ in range(args.stalled)]
    print("connected", flush=True)
    sys.stdin.read()  # until the caller closes stdin
    for viewer in viewers:
        print(f"{'stalled' if viewer.stalled else 'reader'} {viewer.frames} frames", flush=True)
        viewer.close()


if __name__ == "__main__":
    main()
