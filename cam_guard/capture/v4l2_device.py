"""A V4L2 device node asked directly (ioctl), for what OpenCV does not tell: why an open failed
and who holds the camera.

OpenCV's V4L2 backend answers a failed open with `isOpened() == False`. The kernel knows more:
the node is gone (unplugged), not ours to open (permission), not a capture node (a UVC camera's
second /dev/video* carries metadata), or the stream belongs to another open file (uvcvideo lets
one file stream; REQBUFS from any other gets EBUSY). /proc names the process holding it.
"""

import errno
import fcntl
import os
import struct
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
BUF_TYPE_VIDEO_CAPTURE = 1
MEMORY_MMAP = 1
CAP_VIDEO_CAPTURE = 0x00000001
CAP_DEVICE_CAPS = 0x80000000


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
