"""Frames from the capture worker process to the camera node through a shared-memory file.

The worker writes each frame into one of a few slots of an mmap'd file in /dev/shm and then
announces it over its stdout pipe; the node copies the slot out. A slot's sequence number is set
to 0 while it is being written and to the frame's number when done, so a reader that raced the
writer sees a mismatch and drops that frame instead of returning a torn one.
"""

import mmap
import os
import struct
import tempfile
from dataclasses import dataclass

import numpy as np

_MAGIC = 0x63616D67  # "camg"
_HEADER = struct.Struct("<IIIQQ")  # magic, slots, reserved, pixel capacity, jpeg capacity
_HEADER_SIZE = 64
_SLOT_HEADER = struct.Struct("<Q")  # sequence number, 0 while writing
_SLOT_HEADER_SIZE = 64  # keeps pixel data cache-line aligned
SLOTS = 3


def shm_dir() -> str:
    return "/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir()


@dataclass(frozen=True)
class FrameLayout:
    """Where frame `seq` lies in the ring and what it holds."""

    seq: int
    slot: int
    height: int
    width: int
    channels: int
    jpeg_len: int


class FrameRing:
    def __init__(self, path: str, mm: mmap.mmap) -> None:
        self.path = path
        self._mm = mm
        magic, self.slots, _, self.pixel_capacity, self.jpeg_capacity = _HEADER.unpack_from(mm, 0)
        if magic != _MAGIC:
            raise ValueError(f"{path} is not a cam_guard frame ring")
        self._slot_size = _SLOT_HEADER_SIZE + self.pixel_capacity + self.jpeg_capacity

    @classmethod
    def create(cls, path: str, pixel_capacity: int, jpeg_capacity: int, slots: int = SLOTS) -> "FrameRing":
        size = _HEADER_SIZE + slots * (_SLOT_HEADER_SIZE + pixel_capacity + jpeg_capacity)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.ftruncate(fd, size)
            mm = mmap.mmap(fd, size)
        finally:
            os.close(fd)
        _HEADER.pack_into(mm, 0, _MAGIC, slots, 0, pixel_capacity, jpeg_capacity)
        return cls(path, mm)

    @classmethod
    def attach(cls, path: str) -> "FrameRing":
        fd = os.open(path, os.O_RDONLY)
        try:
            mm = mmap.mmap(fd, 0, prot=mmap.PROT_READ)
        finally:
            os.close(fd)
        return cls(path, mm)

    def close(self) -> None:
        self._mm.close()

    def _offset(self, slot: int) -> int:
        return _HEADER_SIZE + slot * self._slot_size

    def write(self, seq: int, image: np.ndarray, jpeg: bytes | None) -> FrameLayout:
        """Store frame `seq` (>0); returns the layout to announce to the reader."""
        if image.nbytes > self.pixel_capacity:
            raise ValueError(f"frame of {image.nbytes} bytes exceeds ring capacity {self.pixel_capacity}")
        if jpeg is not None and len(jpeg) > self.jpeg_capacity:
            jpeg = None  # an oversized compressed frame is only ever garbage; keep the pixels
        slot = seq % self.slots
        base = self._offset(slot)
        _SLOT_HEADER.pack_into(self._mm, base, 0)
        start = base + _SLOT_HEADER_SIZE
        self._mm[start:start + image.nbytes] = np.ascontiguousarray(image).data.cast("B")
        if jpeg:
            jstart = start + self.pixel_capacity
            self._mm[jstart:jstart + len(jpeg)] = jpeg
        _SLOT_HEADER.pack_into(self._mm, base, seq)
        height, width = image.shape[:2]
        channels = 1 if image.ndim == 2 else image.shape[2]
        return FrameLayout(seq, slot, height, width, channels, len(jpeg) if jpeg else 0)

    def read(self, layout: FrameLayout) -> tuple[np.ndarray, bytes | None] | None:
        """Copy the frame out; None if the writer reused the slot meanwhile (torn read)."""
        base = self._offset(layout.slot)
        start = base + _SLOT_HEADER_SIZE
        nbytes = layout.height * layout.width * layout.channels
        if _SLOT_HEADER.unpack_from(self._mm, base)[0] != layout.seq:
            return None
        pixels = np.frombuffer(self._mm, np.uint8, nbytes, start).copy()
        jpeg = None
        if layout.jpeg_len:
            jstart = start + self.pixel_capacity
            jpeg = self._mm[jstart:jstart + layout.jpeg_len]
        if _SLOT_HEADER.unpack_from(self._mm, base)[0] != layout.seq:
            return None
        shape = (layout.height, layout.width) if layout.channels == 1 else (
            layout.height, layout.width, layout.channels)
        return pixels.reshape(shape), jpeg
