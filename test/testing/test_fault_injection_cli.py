"""`python -m cam_guard.testing.fault_injection`: faults typed on stdin reach a real HTTP client."""

import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from urllib.parse import urlparse

import cv2
import numpy as np
import pytest

SOI = b"\xff\xd8"  # every JPEG frame starts with it


class Cli:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cam_guard.testing.fault_injection", "--port", "0", "--width", "160",
             "--height", "120", "--fps", "30"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, bufsize=0)  # unbuffered: select() sees every line not yet read
        self.url = self.line().removeprefix("serving ")

    def line(self, timeout: float = 30) -> str:
        assert self.proc.stdout is not None
        ready = select.select([self.proc.stdout], [], [], timeout)[0]
        assert ready, "the CLI printed nothing"
        return self.proc.stdout.readline().decode().rstrip("\n")

    def command(self, text: str) -> str:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text.encode() + b"\n")
        return self.line()


@pytest.fixture
def cli() -> Iterator[Cli]:
    running = Cli()
    yield running
    if running.proc.poll() is None:
        running.proc.kill()
        running.proc.wait(timeout=5)


def connect(url: str) -> socket.socket:
    parts = urlparse(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=5)
    sock.sendall(f"GET {parts.path} HTTP/1.0\r\n\r\n".encode())
    return sock


def receive(sock: socket.socket, seconds: float) -> bytes:
    """What arrives within `seconds`; stops early when the server hangs up."""
    data = b""
    deadline = time.monotonic() + seconds
    while (remaining := deadline - time.monotonic()) > 0:
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(1 << 16)
        except TimeoutError:
            break
        if not chunk:
            break
        data += chunk
    return data


def test_faults_switched_from_stdin(cli):
    assert cli.url.startswith("http://127.0.0.1:") and cli.url.endswith("/stream.mjpg")
    with connect(cli.url) as stream:
        flowing = receive(stream, 1.0)
        assert flowing.startswith(b"HTTP/1.0 200") and flowing.count(SOI) >= 5
        start = flowing.index(SOI)
        frame = cv2.imdecode(np.frombuffer(flowing[start:flowing.index(SOI, start + 2)], np.uint8), cv2.IMREAD_COLOR)
        assert frame.shape == (120, 160, 3)

        assert cli.command("stall") == "ok: stall"
        receive(stream, 0.2)  # a frame already on its way
        assert receive(stream, 0.5) == b"", "stalled: the connection stays open and silent"
        assert cli.command("resume") == "ok: resume"
        assert receive(stream, 1.0).count(SOI) >= 5

        assert cli.command("drop") == "ok: drop"
        receive(stream, 5.0)  # returns early once the server hangs up
        stream.settimeout(0.1)
        assert stream.recv(1) == b"", "dropped: the server hung up"

    assert cli.command("stop") == "ok: stop"
    with pytest.raises(ConnectionRefusedError):
        connect(cli.url)
    assert cli.command("start") == "ok: start"
    with connect(cli.url) as stream:
        assert receive(stream, 1.0).count(SOI) >= 5, "back on the same port"

    assert cli.command("slow 0.5") == "ok: slow 0.5"
    assert cli.command("corrupt x").startswith("corrupt failed:")
    assert cli.command("explode") == "unknown command 'explode'"
    assert cli.line() == "commands (one per line; Ctrl-C quits):"


def test_a_piped_script_runs_then_it_serves_until_ctrl_c(cli):
    assert cli.command("sleep 0.1") == "ok: sleep 0.1"
    assert cli.proc.stdin is not None
    cli.proc.stdin.close()  # the script ended: keep serving
    with connect(cli.url) as stream:
        assert receive(stream, 1.0).count(SOI) >= 5
    cli.proc.send_signal(signal.SIGINT)
    assert cli.proc.wait(timeout=10) == 0
    assert cli.proc.stderr is not None and b"Traceback" not in cli.proc.stderr.read()
