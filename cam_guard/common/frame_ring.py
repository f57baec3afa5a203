"""Newest frames between processes through a shared-memory file, with no locks to inherit.

A writer process puts each frame into one of a few slots of an mmap'd file in /dev/shm and
records it as the latest; readers in other processes copy the newest slot out. Every record is
guarded seqlock-style: a slot's sequence number is 0 while it is written, and the status and
reward blocks carry a counter that is odd while written, so a reader that races the writer
sees the mismatch and retries or drops instead of returning torn data. Nothing here blocks, so a
process that forks while using it leaves its child nothing to deadlock on.

Used by the capture worker → camera node, and by the ROS bridge helper → LeRobot camera.
"""

import contextlib
import mmap
import os
import struct
import tempfile
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

_MAGIC = 0x63616D67  # "camg"
_LAYOUT = struct.Struct("<IIQQ")  # magic, slots, pixel capacity, jpeg capacity
_LATEST = struct.Struct("<Q")
_LATEST_AT = 24
_STATUS_AT = 32  # counter u64, state 32 bytes, error 160 bytes, fault 32 bytes, fault stamp u64, reason 400 bytes
_STATE_BYTES, _ERROR_BYTES, _REASON_BYTES = 32, 160, 400  # a reason names a device path twice, by-id paths are long
_STATUS_SIZE = 2 * _STATE_BYTES + _ERROR_BYTES + 8 + _REASON_BYTES
_REWARD_AT = _STATUS_AT + 8 + _STATUS_SIZE  # counter u64, probability f64, threshold f64, success u64, stamp u64
_REWARD = struct.Struct("<ddQQ")
_HEADER_SIZE = 1024
_SLOT = struct.Struct("<QQIIII")  # seq (0 while writing), stamp_ns, height, width, channels, jpeg_len
_SLOT_HEADER_SIZE = 64  # keeps pixel data cache-line aligned
SLOTS = 3
_RETRIES = 8


def shm_dir() -> str:
    return "/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir()


def ring_path(kind: str, index: int) -> str:
    """`<shm>/cam_guard-<kind>-<owner pid>-<index>`: the owner's PID lets a later process clean up."""
    return os.path.join(shm_dir(), f"cam_guard-{kind}-{os.getpid()}-{index}")


def remove_stale_rings() -> list[str]:
    """Delete ring files whose owner process is gone (killed before it could unlink them)."""
    removed = []
    for name in os.listdir(shm_dir()):
        parts = name.split("-")
        if len(parts) != 4 or parts[0] != "cam_guard" or not parts[2].isdigit():
            continue
        try:
            os.kill(int(parts[2]), 0)
        except ProcessLookupError:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(shm_dir(), name))
                removed.append(name)
        except PermissionError:
            pass  # another user's live process
    return removed


@dataclass
class Frame:
    seq: int
    stamp_ns: int  # capture time, wall clock
    image: np.ndarray | None  # None when the writer only checked the JPEG: nobody needed pixels
    jpeg: bytes | None  # the source's own JPEG bytes, when it sent JPEG
    width: int
    height: int


class Status(NamedTuple):
    """What the camera says about itself, as the bridge helper saw it."""

    state: str  # the last reported state ('' before any)
    error: str  # why frames are being rejected ('' when they are not)
    fault: str = ""  # the state that ended the last streaming spell (STALLED, ...) while it lasts
    fault_ns: int = 0  # when that happened, wall clock
    reason: str = ""  # why, in the camera's own words (its diagnostics), while it is in that state


@dataclass(frozen=True)
class RewardSample:
    probability: float
    threshold: float
    success: bool
    stamp_ns: int  # capture stamp of the image it was computed from


class FrameRing:
    def __init__(self, path: str, mm: mmap.mmap) -> None:
        self.path = path
        self._mm = mm
        magic, self.slots, self.pixel_capacity, self.jpeg_capacity = _LAYOUT.unpack_from(mm, 0)
        if magic != _MAGIC:
            raise ValueError(f"{path} is not a cam_guard frame ring")
        self._slot_size = _SLOT_HEADER_SIZE + self.pixel_capacity + self.jpeg_capacity

    @classmethod
    def create(cls, path: str, pixel_capacity: int, jpeg_capacity: int = 0, slots: int = SLOTS) -> "FrameRing":
        size = _HEADER_SIZE + slots * (_SLOT_HEADER_SIZE + pixel_capacity + jpeg_capacity)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.ftruncate(fd, size)
            mm = mmap.mmap(fd, size)
        finally:
            os.close(fd)
        _LAYOUT.pack_into(mm, 0, _MAGIC, slots, pixel_capacity, jpeg_capacity)
        return cls(path, mm)

    @classmethod
    def attach(cls, path: str, writable: bool = False) -> "FrameRing":
        fd = os.open(path, os.O_RDWR if writable else os.O_RDONLY)
        try:
            mm = mmap.mmap(fd, 0, prot=mmap.PROT_READ | (mmap.PROT_WRITE if writable else 0))
        finally:
            os.close(fd)
        return cls(path, mm)

    def close(self) -> None:
        self._mm.close()

    def _slot_at(self, seq: int) -> int:
        return _HEADER_SIZE + (seq % self.slots) * self._slot_size

    # -- frames ------------------------------------------------------------------------------
    def latest_seq(self) -> int:
        return _LATEST.unpack_from(self._mm, _LATEST_AT)[0]

    def write(self, image: np.ndarray, jpeg: bytes | None = None, stamp_ns: int = 0) -> int:
        """Store the next frame; returns its sequence number (1, 2, …)."""
        height, width = image.shape[:2]
        return self._write(image, jpeg, stamp_ns, width, height, 1 if image.ndim == 2 else image.shape[2])

    def write_jpeg_only(self, jpeg: bytes, width: int, height: int, stamp_ns: int = 0) -> int:
        """Store a frame as its JPEG alone (its pixels were not decoded); read() gives image None."""
        return self._write(None, jpeg, stamp_ns, width, height, 0)

    def _write(self, image: np.ndarray | None, jpeg: bytes | None, stamp_ns: int, width: int, height: int,
               channels: int) -> int:
        # A frame without pixels must fit them too: decoding may resume at the next frame.
        needed = image.nbytes if image is not None else width * height * 3
        if needed > self.pixel_capacity:
            raise ValueError(f"a {width}x{height} frame ({needed} bytes) exceeds the ring's {self.pixel_capacity} "
                             "bytes")
        if jpeg is not None and len(jpeg) > self.jpeg_capacity:
            if image is None:
                raise ValueError(f"a {len(jpeg)}-byte JPEG exceeds the ring's {self.jpeg_capacity} bytes")
            jpeg = None  # a compressed frame larger than raw pixels is garbage; keep the pixels
        seq = self.latest_seq() + 1
        base = self._slot_at(seq)
        _SLOT.pack_into(self._mm, base, 0, 0, 0, 0, 0, 0)
        start = base + _SLOT_HEADER_SIZE
        if image is not None:
            self._mm[start:start + image.nbytes] = np.ascontiguousarray(image).data.cast("B")
        if jpeg:
            jstart = start + self.pixel_capacity
            self._mm[jstart:jstart + len(jpeg)] = jpeg
        _SLOT.pack_into(self._mm, base, seq, stamp_ns, height, width, channels, len(jpeg) if jpeg else 0)
        _LATEST.pack_into(self._mm, _LATEST_AT, seq)
        return seq

    def read(self, seq: int) -> Frame | None:
        """Copy frame `seq` out; None if it was never written or its slot has been reused."""
        base = self._slot_at(seq)
        got_seq, stamp_ns, height, width, channels, jpeg_len = _SLOT.unpack_from(self._mm, base)
        if seq == 0 or got_seq != seq:
            return None
        start = base + _SLOT_HEADER_SIZE
        pixels = np.frombuffer(self._mm, np.uint8, height * width * channels, start).copy() if channels else None
        jpeg = self._mm[start + self.pixel_capacity:start + self.pixel_capacity + jpeg_len] if jpeg_len else None
        if _SLOT.unpack_from(self._mm, base)[0] != seq:
            return None
        image = None if pixels is None else pixels.reshape((height, width) if channels == 1 else (height, width,
                                                                                                  channels))
        return Frame(seq, stamp_ns, image, jpeg, width, height)

    def read_latest(self) -> Frame | None:
        for _ in range(_RETRIES):  # the writer may lap us while we copy: take the newer one
            seq = self.latest_seq()
            if seq == 0:
                return None
            frame = self.read(seq)
            if frame is not None:
                return frame
        return None

    # -- status and reward (written by the bridge helper) ------------------------------------
    def _guarded_write(self, at: int, payload: bytes) -> None:
        counter = _LATEST.unpack_from(self._mm, at)[0]
        _LATEST.pack_into(self._mm, at, counter + 1)  # odd: being written
        self._mm[at + 8:at + 8 + len(payload)] = payload
        _LATEST.pack_into(self._mm, at, counter + 2)

    def _guarded_read(self, at: int, size: int) -> bytes | None:
        for _ in range(_RETRIES):
            before = _LATEST.unpack_from(self._mm, at)[0]
            payload = bytes(self._mm[at + 8:at + 8 + size])
            if before % 2 == 0 and _LATEST.unpack_from(self._mm, at)[0] == before:
                return payload if before else None
        return None

    def set_status(self, status: Status) -> None:
        self._guarded_write(_STATUS_AT, _text(status.state, _STATE_BYTES) + _text(status.error, _ERROR_BYTES)
                            + _text(status.fault, _STATE_BYTES) + _LATEST.pack(status.fault_ns)
                            + _text(status.reason, _REASON_BYTES))

    def status(self) -> Status:
        """As last set; all empty before anything was set."""
        payload = self._guarded_read(_STATUS_AT, _STATUS_SIZE)
        if payload is None:
            return Status("", "")
        fault_at = _STATE_BYTES + _ERROR_BYTES
        reason_at = fault_at + _STATE_BYTES + _LATEST.size
        return Status(_untext(payload[:_STATE_BYTES]), _untext(payload[_STATE_BYTES:fault_at]),
                      _untext(payload[fault_at:fault_at + _STATE_BYTES]),
                      _LATEST.unpack_from(payload, fault_at + _STATE_BYTES)[0],
                      _untext(payload[reason_at:reason_at + _REASON_BYTES]))

    def set_reward(self, sample: RewardSample) -> None:
        self._guarded_write(_REWARD_AT, _REWARD.pack(sample.probability, sample.threshold,
                                                     int(sample.success), sample.stamp_ns))

    def reward(self) -> RewardSample | None:
        payload = self._guarded_read(_REWARD_AT, _REWARD.size)
        if payload is None:
            return None
        probability, threshold, success, stamp_ns = _REWARD.unpack(payload)
        return RewardSample(probability, threshold, bool(success), stamp_ns)


def _text(value: str, size: int) -> bytes:
    return value.encode()[:size].ljust(size, b"\0")


def _untext(field: bytes) -> str:
    return field.rstrip(b"\0").decode(errors="replace")
