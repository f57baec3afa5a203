"""The LeRobot side of the bridge: starts `cam_guard.bridge.helper` and reads its ring.

Imports neither rclpy nor OpenCV and starts no thread: a trainer process using it can fork at
any time and its child inherits no lock. Waiting for a frame is a select() on the doorbell pipe.
"""

import contextlib
import itertools
import os
import select
import subprocess
import sys
import time

from cam_guard.common.frame_ring import Frame, FrameRing, RewardSample, Status, remove_stale_rings, ring_path

_STOP_GRACE_S = 2.0
_counter = itertools.count(1)


class BridgeError(ConnectionError):
    """The helper process is gone or could not start."""


def require_fresh(what: str, stamp_ns: int | None, max_age_ms: float, state: str) -> float:
    """Age in ms of the newest `what` (from its capture stamp); TimeoutError if none or too old."""
    if stamp_ns is None:
        raise TimeoutError(f"no {what} yet ({state})")
    age_ms = (time.time_ns() - stamp_ns) / 1e6
    if age_ms > max_age_ms:
        raise TimeoutError(f"newest {what} is {age_ms:.0f} ms old, max {max_age_ms:.0f} ms ({state})")
    return age_ms


class BridgeClient:
    def __init__(self, image_topic: str = "", color: str = "rgb", state_topic: str = "", reward_topic: str = "",
                 max_width: int = 0, max_height: int = 0, transport: str = "raw") -> None:
        """`transport`: 'raw' (sensor_msgs/Image) or 'compressed' (the camera's JPEG, decoded by the helper)."""
        self._args = ["--color", color, "--image-topic", image_topic, "--transport", transport,
                      "--state-topic", state_topic, "--reward-topic", reward_topic]
        self._capacity = max_width * max_height * 3
        self._owner_pid = os.getpid()
        self._proc: subprocess.Popen | None = None
        self._ring: FrameRing | None = None
        self._doorbell = -1

    def start(self) -> None:
        remove_stale_rings()
        path = ring_path("bridge", next(_counter))
        self._ring = FrameRing.create(path, self._capacity)
        read_fd, write_fd = os.pipe()
        os.set_blocking(read_fd, False)
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "cam_guard.bridge.helper", "--ring", path, "--doorbell-fd", str(write_fd),
                 *self._args], pass_fds=(write_fd,), stdin=subprocess.DEVNULL)
        except OSError as exc:
            os.close(read_fd)
            self._release_ring()
            raise BridgeError(f"cannot start the cam_guard bridge helper: {exc}") from None
        finally:
            os.close(write_fd)
        self._doorbell = read_fd

    def stop(self) -> None:
        if os.getpid() != self._owner_pid:
            return  # a forked child's copy: the helper and the ring belong to the parent
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=_STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=_STOP_GRACE_S)
        self._proc = None
        if self._doorbell >= 0:
            os.close(self._doorbell)
            self._doorbell = -1
        self._release_ring()

    def _release_ring(self) -> None:
        if self._ring is not None:
            self._ring.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._ring.path)
            self._ring = None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _checked_ring(self) -> FrameRing:
        if os.getpid() != self._owner_pid:
            raise BridgeError(f"this camera belongs to process {self._owner_pid}, the parent of this forked process "
                              f"{os.getpid()}: connect a camera of this process's own")
        if self._ring is None:
            raise BridgeError("the bridge is not started")
        if not self.running:
            code = None if self._proc is None else self._proc.returncode
            raise BridgeError(f"the cam_guard bridge helper exited (code {code})")
        return self._ring

    def latest(self) -> Frame | None:
        return self._checked_ring().read_latest()

    def wait_fresh(self, after_seq: int, timeout_s: float, max_age_s: float | None = None) -> Frame | None:
        """The newest frame numbered above `after_seq` that is at most `max_age_s` (default
        `timeout_s`) old by its capture stamp when returned, waiting up to `timeout_s` for one."""
        ring = self._checked_ring()
        deadline = time.monotonic() + timeout_s
        max_age_ns = int((timeout_s if max_age_s is None else max_age_s) * 1e9)
        while True:
            if ring.latest_seq() > after_seq:
                frame = ring.read_latest()
                # A frame left unread through a stall is too old once the stall outlasts the timeout.
                if frame is not None and frame.seq > after_seq and time.time_ns() - frame.stamp_ns <= max_age_ns:
                    return frame
            if not self._wait_doorbell(deadline):
                return None

    def wait_reward(self, max_age_s: float, timeout_s: float) -> RewardSample | None:
        """The newest reward if it is at most `max_age_s` old, waiting up to `timeout_s` for one."""
        deadline = time.monotonic() + timeout_s
        while True:
            sample = self._checked_ring().reward()
            if sample is not None and time.time_ns() - sample.stamp_ns <= max_age_s * 1e9:
                return sample
            if not self._wait_doorbell(deadline):
                return None

    def _wait_doorbell(self, deadline: float) -> bool:
        """Wait for the helper's next write, at most 0.1 s (to notice a helper that died); False
        once `deadline` has passed."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        if select.select([self._doorbell], [], [], min(remaining, 0.1))[0]:
            with contextlib.suppress(BlockingIOError):
                os.read(self._doorbell, 1 << 16)
        self._checked_ring()
        return True

    def status(self) -> Status:
        return self._checked_ring().status()

    def describe_state(self) -> str:
        """For error messages: what the camera last said about itself, or why we cannot know."""
        try:
            status = self.status()
        except BridgeError as exc:
            return str(exc)
        text = f"last reported camera state {status.state or 'UNKNOWN'}"
        if status.fault and status.fault != status.state:
            text += f", {status.fault} {(time.time_ns() - status.fault_ns) / 1e9:.1f} s ago"
        if status.reason:
            text += f": {status.reason}"
        return text + (f"; {status.error}" if status.error else "")

    def reward(self) -> RewardSample | None:
        return self._checked_ring().reward()


def list_image_topics(timeout_s: float = 20.0) -> list[dict[str, str]]:
    """Live sensor_msgs/Image topics, asked of a short-lived helper (this process stays DDS-free)."""
    import json

    result = subprocess.run([sys.executable, "-m", "cam_guard.bridge.helper", "--list"], capture_output=True,
                            text=True, timeout=timeout_s, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise BridgeError(f"listing topics failed: {result.stderr.strip().splitlines()[-1:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])
