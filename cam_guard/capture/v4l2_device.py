"""A V4L2 device node asked directly (ioctl), for what OpenCV does not tell: why an open failed,
who holds the camera, and its controls with the ranges it reports.

OpenCV's V4L2 backend answers a failed open with `isOpened() == False`. The kernel knows more:
the node is gone (unplugged), not ours to open (permission), not a capture node (a UVC camera's
second /dev/video* carries metadata), or the stream belongs to another open file (uvcvideo lets
one file stream; REQBUFS from any other gets EBUSY). /proc names the process holding it.
"""

import errno
import fcntl
import os
import struct
from dataclasses import dataclass
from pathlib import Path

_IOC_WRITE, _IOC_READ = 1, 2


def _ioc(direction: int, nr: int, size: int) -> int:
    return (direction << 30) | (size << 16) | (ord("V") << 8) | nr


_CAPABILITY = struct.Struct("<16s32s32sIII12x")  # driver, card, bus_info, version, capabilities, device_caps
_FMTDESC = struct.Struct("<III32sII12x")  # index, type, flags, description, pixelformat, mbus_code
_REQBUFS = struct.Struct("<IIIIB3x")  # count, type, memory, capabilities, flags
VIDIOC_QUERYCAP = _ioc(_IOC_READ, 0, _CAPABILITY.size)
VIDIOC_ENUM_FMT = _ioc(_IOC_READ | _IOC_WRITE, 2, _FMTDESC.size)
VIDIOC_REQBUFS = _ioc(_IOC_READ | _IOC_WRITE, 8, _REQBUFS.size)
_CONTROL = struct.Struct("<Ii")  # id, value
_QUERYCTRL = struct.Struct("<II32siiiiI8x")  # id, type, name, minimum, maximum, step, default_value, flags
_QUERYMENU = struct.Struct("<II32sI")  # id, index, name (or value), reserved: packed
VIDIOC_G_CTRL = _ioc(_IOC_READ | _IOC_WRITE, 27, _CONTROL.size)
VIDIOC_S_CTRL = _ioc(_IOC_READ | _IOC_WRITE, 28, _CONTROL.size)
VIDIOC_QUERYCTRL = _ioc(_IOC_READ | _IOC_WRITE, 36, _QUERYCTRL.size)
VIDIOC_QUERYMENU = _ioc(_IOC_READ | _IOC_WRITE, 37, _QUERYMENU.size)
CTRL_FLAG_DISABLED = 0x0001
CTRL_TYPE_MENU = 3
BUF_TYPE_VIDEO_CAPTURE = 1
MEMORY_MMAP = 1
CAP_VIDEO_CAPTURE = 0x00000001
CAP_DEVICE_CAPS = 0x80000000


@dataclass(frozen=True)
class ControlRange:
    """A control as the camera reports it (QUERYCTRL), with the menu entries it offers."""
    minimum: int
    maximum: int
    step: int
    default: int
    menu: tuple[int, ...] = ()

    def __str__(self) -> str:
        if self.menu:
            return "one of " + ", ".join(map(str, self.menu))
        return f"{self.minimum}..{self.maximum}" + (f" in steps of {self.step}" if self.step > 1 else "")


def query_control(fd: int, cid: int) -> ControlRange | None:
    """The control's range, or None when the camera has no such control (or it is disabled)."""
    buf = bytearray(_QUERYCTRL.pack(cid, 0, b"", 0, 0, 0, 0, 0))
    try:
        fcntl.ioctl(fd, VIDIOC_QUERYCTRL, buf)
    except OSError as exc:
        if exc.errno == errno.EINVAL:
            return None
        raise
    _, kind, _, minimum, maximum, step, default, flags = _QUERYCTRL.unpack(buf)
    if flags & CTRL_FLAG_DISABLED:
        return None
    menu: list[int] = []
    if kind == CTRL_TYPE_MENU:
        for index in range(minimum, maximum + 1):
            item = bytearray(_QUERYMENU.pack(cid, index, b"", 0))
            try:
                fcntl.ioctl(fd, VIDIOC_QUERYMENU, item)
            except OSError:
                continue  # a gap in the menu
            menu.append(index)
    return ControlRange(minimum, maximum, step, default, tuple(menu))


def get_control(fd: int, cid: int) -> int:
    buf = bytearray(_CONTROL.pack(cid, 0))
    fcntl.ioctl(fd, VIDIOC_G_CTRL, buf)
    return _CONTROL.unpack(buf)[1]


def set_control(fd: int, cid: int, value: int) -> None:
    fcntl.ioctl(fd, VIDIOC_S_CTRL, bytearray(_CONTROL.pack(cid, value)))


def fourcc_text(code: int) -> str:
    return "".join(chr((code >> shift) & 0xFF) for shift in (0, 8, 16, 24)).strip()


def holders(path: str) -> list[str]:
    """'pid N (command)' for each process with `path` open, as far as /proc lets us see."""
    target = os.path.realpath(path)
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            fds = list((proc / "fd").iterdir())
            if any(os.readlink(fd) == target for fd in fds):
                command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
                found.append(f"pid {proc.name} ({command[:80] or (proc / 'comm').read_text().strip()})")
        except OSError:  # gone meanwhile, or another user's: /proc does not tell
            continue
    return found


def capture_formats(fd: int) -> list[str]:
    formats = []
    for index in range(64):
        buf = bytearray(_FMTDESC.pack(index, BUF_TYPE_VIDEO_CAPTURE, 0, b"", 0, 0))
        try:
            fcntl.ioctl(fd, VIDIOC_ENUM_FMT, buf)
        except OSError:
            break
        formats.append(fourcc_text(_FMTDESC.unpack(buf)[4]))
    return formats


def _capture_caps(fd: int) -> tuple[bool, str]:
    """(is a video capture node, card name); OSError from QUERYCAP when it is no V4L2 device."""
    caps = bytearray(_CAPABILITY.size)
    fcntl.ioctl(fd, VIDIOC_QUERYCAP, caps)
    _, card, _, _, capabilities, device_caps = _CAPABILITY.unpack(caps)
    effective = device_caps if capabilities & CAP_DEVICE_CAPS else capabilities
    return bool(effective & CAP_VIDEO_CAPTURE), card.split(b"\0", 1)[0].decode(errors="replace")


def is_capture_node(path: str) -> bool:
    """False for what cannot capture (a UVC camera's metadata node, a codec); True when unsure."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_NONBLOCK)
    except OSError:
        return True  # busy, gone or not ours: opening it will say so
    try:
        return _capture_caps(fd)[0]
    except OSError:
        return False
    finally:
        os.close(fd)


def explain_open_failure(path: str, fourcc: str) -> str:
    """Why a V4L2 device will not stream for us, as far as the kernel says; '' if it seems fine."""
    real = os.path.realpath(path)
    if not os.path.exists(real):
        return f"gone: {path} does not exist (unplugged?)"
    try:
        fd = os.open(real, os.O_RDWR | os.O_NONBLOCK)
    except PermissionError:
        return f"permission denied on {real} (is this user in its group, usually 'video'?)"
    except OSError as exc:
        gone = exc.errno in (errno.ENODEV, errno.ENXIO, errno.ENOENT)
        return f"{'gone' if gone else 'cannot open'}: {real}: {exc.strerror}"
    try:
        try:
            capture, name = _capture_caps(fd)
        except OSError as exc:
            if exc.errno == errno.ENODEV:
                return f"gone: {real} was removed"
            return f"not a V4L2 device: {real} ({exc.strerror})"
        if not capture:
            return f"not a capture node: {real} ({name}; a camera's other /dev/video* node may carry metadata only)"
        try:  # asks for no buffers: frees nothing of another owner, but uvcvideo says EBUSY if there is one
            fcntl.ioctl(fd, VIDIOC_REQBUFS, bytearray(_REQBUFS.pack(0, BUF_TYPE_VIDEO_CAPTURE, MEMORY_MMAP, 0, 0)))
        except OSError as exc:
            if exc.errno == errno.EBUSY:
                held_by = holders(real)
                return f"busy: {real} is streaming to " + (", ".join(held_by) if held_by else
                                                           "another process (/proc does not say which)")
        formats = capture_formats(fd)
        if fourcc not in formats:
            return f"format refused: {real} offers {', '.join(formats) or 'no capture format'}, asked {fourcc}"
        return ""
    finally:
        os.close(fd)
