"""The preview in a browser: a small HTTP server from the standard library. No ROS here.

    GET /             the page (web_page.html: inline script, no CDN; robots are often offline)
    GET /stream.mjpg  the overlay as multipart/x-mixed-replace MJPEG, as web_video_server serves it
    GET /state.json   per camera state, fps, frame age, counters; probability, threshold, history (web_state.py)

Each overlay is JPEG-encoded at most once, and only while someone watches, however many do. The
render thread only swaps a reference (`JpegFanout.offer`); every viewer has a thread of its own that
sends the newest JPEG when its socket takes it and skips the ones it was too slow for, so a slow
viewer delays nobody else, and one that stops reading is dropped after `send_timeout_s`.
"""

import json
import socket
import threading
import time
import uuid
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.resources import files
from typing import Any
from urllib.parse import parse_qs, urlsplit

import cv2
import numpy as np

from cam_guard.preview.overlay import OverlayInfo
from cam_guard.preview.web_state import PreviewState

BOUNDARY = "cam_guard_frame"
JPEG_QUALITY = 80
MAX_STREAMS = 16  # one thread each in the preview process
SEND_BUFFER_BYTES = 256 * 1024  # what the kernel may queue per viewer: a few frames, not seconds of them
PAGE = files("cam_guard.preview").joinpath("web_page.html").read_bytes()


class JpegFanout:
    """The newest overlay, as JPEG once a viewer asks for it; shared by every viewer."""

    def __init__(self, quality: int = JPEG_QUALITY) -> None:
        self._quality = quality
        self._cond = threading.Condition()
        self._frame: np.ndarray | None = None
        self._stamp = 0.0
        self._seq = 0
        self._closed = False
        self._encode_lock = threading.Lock()
        self._jpeg = b""
        self._jpeg_stamp = 0.0
        self._jpeg_seq = 0
        self.encoded = 0

    def offer(self, image: np.ndarray, stamp: float) -> None:
        """Make `image` (BGR, not modified afterwards; its source captured at `stamp`) the newest frame.
        Never waits for a viewer."""
        with self._cond:
            self._frame, self._stamp, self._seq = image, stamp, self._seq + 1
            self._cond.notify_all()

    def next_jpeg(self, after: int) -> tuple[int, bytes, float] | None:
        """Wait for a frame newer than frame number `after`; the newest as (number, JPEG, stamp), or
        None once closed. (The node offers at least 5 frames a second, NO SIGNAL included.)"""
        with self._cond:
            self._cond.wait_for(lambda: self._seq > after or self._closed)
            if self._closed:
                return None
        with self._encode_lock:
            with self._cond:  # the newest again: a frame that came while this viewer waited for the lock wins
                seq, frame, stamp = self._seq, self._frame, self._stamp
            if self._jpeg_seq < seq and frame is not None:
                ok, buffer = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, self._quality])
                if not ok:
                    raise ValueError(f"cannot encode a {frame.shape} {frame.dtype} frame as JPEG")
                self._jpeg, self._jpeg_seq, self._jpeg_stamp = buffer.tobytes(), seq, stamp
                self.encoded += 1
            return self._jpeg_seq, self._jpeg, self._jpeg_stamp

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a viewer blocked in a send never holds up the node's exit


class PreviewWeb:
    """The web view of one preview node: feed it overlays, rewards and diagnostics; it serves them."""

    def __init__(self, host: str, port: int, cameras: list[tuple[str, str]], *, send_timeout_s: float = 10.0) -> None:
        """`cameras`: (label, image topic) per camera, as the preview's tiles show them."""
        self.state = PreviewState(cameras)
        self.fanout = JpegFanout()
        self.server_id = uuid.uuid4().hex  # the page reloads its stream when this changes (node restarted)
        self._streams = 0
        self._streams_lock = threading.Lock()
        self._httpd = _Server((host, port), _handler_class(self, send_timeout_s))  # OSError: port taken
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="preview-web", daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def streams(self) -> int:
        return self._streams

    def show(self, overlay: np.ndarray, infos: list[OverlayInfo], stamp: float) -> None:
        """An overlay drawn with `infos` (one per camera) after the frame captured at `stamp` arrived
        (called by the render thread; never waits)."""
        self.state.drawn(infos, time.time())
        self.fanout.offer(overlay, stamp)

    def state_document(self, since: float) -> dict[str, Any]:
        return {**self.state.snapshot(since, time.time()), "server_id": self.server_id, "viewers": self._streams}

    def open_stream(self) -> bool:
        with self._streams_lock:
            if self._streams >= MAX_STREAMS:
                return False
            self._streams += 1
            return True

    def close_stream(self) -> None:
        with self._streams_lock:
            self._streams -= 1

    def close(self) -> None:
        self.fanout.close()  # ends every stream
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=2.0)


def _handler_class(web: PreviewWeb, send_timeout_s: float) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        timeout = send_timeout_s  # applies to every read and send on this connection
        server_version = "cam_guard"

        def setup(self) -> None:
            super().setup()
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # no line per request in the node's log

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            routes: dict[str, Callable[[], None]] = {
                "/": self._page, "/index.html": self._page, "/stream.mjpg": self._stream, "/state.json":
                lambda: self._state(parse_qs(url.query).get("since", ["0"])[0])}
            route = routes.get(url.path)
            if route is None:
                self.send_error(HTTPStatus.NOT_FOUND)
                return
            try:
                route()
            except (ConnectionError, TimeoutError):
                self.close_connection = True  # the viewer left or stopped reading

        def _send(self, content_type: str, body: bytes) -> None:
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def _page(self) -> None:
            self._send("text/html; charset=utf-8", PAGE)

        def _state(self, since: str) -> None:
            try:
                after = float(since)
            except ValueError:
                self.send_error(HTTPStatus.BAD_REQUEST, "since must be a number")
                return
            self._send("application/json", json.dumps(web.state_document(after)).encode())

        def _stream(self) -> None:
            if not web.open_stream():
                self.send_error(HTTPStatus.SERVICE_UNAVAILABLE, f"at most {MAX_STREAMS} streams at once")
                return
            try:
                self.send_response(HTTPStatus.OK)
                self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
                self.send_header("Cache-Control", "no-store")
                self.send_header("Connection", "close")
                self.end_headers()
                self.close_connection = True
                sent = 0
                while (item := web.fanout.next_jpeg(sent)) is not None:
                    sent, jpeg, stamp = item
                    # X-Timestamp: the source frame's capture time, as web_video_server sends it.
                    self.wfile.write(f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n"
                                     f"X-Timestamp: {stamp:.6f}\r\n\r\n".encode() + jpeg + b"\r\n")
            finally:
                web.close_stream()

    return Handler
