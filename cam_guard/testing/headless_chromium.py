"""Debian's chromium, headless, driven over the DevTools protocol on a pipe (no websocket, no selenium).

    python -m cam_guard.testing.headless_chromium URL OUT.png [--wait-js EXPR] [--seconds S]

saves a screenshot of URL once EXPR is true (how docs/preview_web.png was taken).

With --remote-debugging-pipe chromium reads commands on fd 3 and writes replies on fd 4, each a
JSON object ended by a NUL byte. A shell puts our pipe ends there before it execs chromium, so
nothing runs between fork and exec in this (threaded) process. (bash: dash takes only fds 0-9.)
"""

import argparse
import base64
import contextlib
import fcntl
import json
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from cam_guard.testing.polling import poll

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--no-default-browser-check", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--hide-scrollbars", "--mute-audio", "--remote-debugging-pipe"]


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class DevToolsError(RuntimeError):
    """Chromium answered a command with an error, or a script threw."""


class HeadlessChromium:
    """One headless browser with one page; every call is bounded by `timeout`."""

    def __init__(self, width: int = 1280, height: int = 860, timeout: float = 60.0) -> None:
        binary = chromium_path()
        if binary is None:
            raise FileNotFoundError("chromium is not installed (apt-get install chromium)")
        self._profile = tempfile.TemporaryDirectory(prefix="cam_guard-chromium-")
        self._timeout = timeout
        # Our ends for chromium, at fds >= 10 so that putting them at 3 and 4 overwrites neither.
        commands_read, self._commands = os.pipe()
        self._replies, replies_write = os.pipe()
        child_ends = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in (commands_read, replies_write)]
        for fd in (commands_read, replies_write):
            os.close(fd)
        flags = [*FLAGS, f"--user-data-dir={self._profile.name}", f"--window-size={width},{height}", "about:blank"]
        read_end, write_end = child_ends
        self.proc = subprocess.Popen(
            ["bash", "-c", f'exec "$0" "$@" 3<&{read_end} 4>&{write_end} {read_end}<&- {write_end}>&-', binary, *flags],
            pass_fds=child_ends, process_group=0, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for fd in child_ends:
            os.close(fd)
        self._buffer = b""
        self._next_id = 0
        self._session: str | None = None
        try:
            target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
            self._session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            # The page gets exactly width × height (the window's own size includes no browser frame,
            # but headless still reserves some of it).
            self.call("Emulation.setDeviceMetricsOverride", {"width": width, "height": height,
                                                             "deviceScaleFactor": 1, "mobile": False})
        except BaseException:
            self.close()
            raise

    def call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send one command (to the page once attached) and return its result."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if self._session is not None:
            message["sessionId"] = self._session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + self._timeout
        while True:
            while b"\0" in self._buffer:
                raw, self._buffer = self._buffer.split(b"\0", 1)
                reply = json.loads(raw)
                if reply.get("id") == self._next_id:  # anything else is an event, not asked for
                    if "error" in reply:
                        raise DevToolsError(f"{method}: {reply['error']}")
                    return reply["result"]
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([self._replies], [], [], remaining)[0]:
                raise TimeoutError(f"chromium did not answer {method} within {self._timeout} s")
            chunk = os.read(self._replies, 1 << 20)
            if not chunk:
                raise DevToolsError(f"chromium exited (code {self.proc.poll()}) during {method}")
            self._buffer += chunk

    def open(self, url: str) -> None:
        self.call("Page.navigate", {"url": url})

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (promises awaited)."""
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True})
        if "exceptionDetails" in result:
            raise DevToolsError(f"{expression}: {result['exceptionDetails'].get('text')}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float, what: str = "") -> Any:
        """Poll `expression` every 0.1 s until it is truthy; return its value. While it throws (the
        page is still loading, its script has not run yet) it counts as false."""
        guarded = f"(() => {{ try {{ return ({expression}); }} catch (error) {{ return null; }} }})()"
        return poll(lambda: self.evaluate(guarded), timeout, what or expression)

    def screenshot(self) -> bytes:
        """The page as PNG bytes."""
        return base64.b64decode(self.call("Page.captureScreenshot", {"format": "png"})["data"])

    def close(self) -> None:
        if self.proc.poll() is None:
            self._session, self._timeout = None, 5.0
            with contextlib.suppress(OSError, TimeoutError, DevToolsError):  # killed below
                self.call("Browser.close")
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)  # the process group this object started
                self.proc.wait(timeout=5)
        for fd in (self._commands, self._replies):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._profile.cleanup()

    def __enter__(self) -> "HeadlessChromium":
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="headless_chromium", description=__doc__.split("\n\n")[0])
    parser.add_argument("url")
    parser.add_argument("out", type=Path)
    parser.add_argument("--wait-js", default="document.readyState === 'complete'")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--size", default="1280x860")
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.split("x"))
    with HeadlessChromium(width, height) as browser:
        browser.open(args.url)
        browser.wait_for(args.wait_js, args.seconds)
        args.out.write_bytes(browser.screenshot())
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
