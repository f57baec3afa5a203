"""What a UVC camera and the uvcvideo driver hold for one plug-in of the camera, and how they answer ioctls.

Pure logic: the caller (camera.py) holds the lock, carries the bytes to and from the shim, and owns the
device nodes. Behaviour follows uvcvideo where a program can tell the difference:

- Formats: S_FMT with a pixel format the camera lacks gets the default format (MJPG); a size it lacks
  gets the nearest size of that format; the frame interval is the supported one nearest to the current.
- One owner: the first file that calls S_FMT, S_PARM, S_INPUT or REQBUFS owns the stream until it closes
  (or frees its buffers); any other file gets EBUSY for those and for QUERYBUF/QBUF/DQBUF/STREAMON/OFF.
  Controls stay settable from any file.
- Buffers: frames land only in queued buffers; a frame that finds none is dropped, as the driver does.
  `sequence` counts every frame the camera produced since STREAMON, dropped ones included.
- Controls: integers are rounded to their step and clamped, menus refuse values they lack (EINVAL) or
  that are out of range (ERANGE), and a manual value whose automatic mode is on is refused with EACCES
  (kernel 6.x), unless the same S_EXT_CTRLS call switches the mode to manual.
"""

import ctypes
import errno
import os
import platform
import struct
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

from cam_guard.testing.uvc import v4l2

RESULT_HANG = 1  # the reply that makes the shim block forever (see uvc_shim.c)
MAX_BUFFERS = 32  # uvcvideo's limit
EXT_HEAD = "<IIII"  # wire_ext_controls: which, count, error_idx, reserved
EXT_ITEM = "<IIq"  # wire_ext_control: id, size, value
EXT_HEAD_SIZE = struct.calcsize(EXT_HEAD)
EXT_ITEM_SIZE = struct.calcsize(EXT_ITEM)


@dataclass(frozen=True)
class Mode:
    """One frame size of one pixel format, with the frame rates the camera offers there (fastest first)."""
    fourcc: str
    width: int
    height: int
    fps: tuple[int, ...]


# MJPG at full rate; YUYV only at small sizes, as USB 2.0 bandwidth forces on real webcams.
DEFAULT_MODES = (
    Mode("MJPG", 640, 480, (30, 15)),
    Mode("MJPG", 1280, 720, (30, 15)),
    Mode("YUYV", 320, 240, (30, 15)),
    Mode("YUYV", 160, 120, (30,)),
)
FORMAT_DESCRIPTIONS = {"MJPG": b"Motion-JPEG", "YUYV": b"YUYV 4:2:2"}


@dataclass(frozen=True)
class ControlSpec:
    """A control as QUERYCTRL reports it; `manual_when` = (mode control, value that makes this one settable)."""
    cid: int
    key: str  # the name v4l2-ctl prints
    title: str  # the name QUERYCTRL reports
    kind: int
    minimum: int
    maximum: int
    step: int
    default: int
    menu: Mapping[int, str] = field(default_factory=dict)
    manual_when: tuple[int, int] | None = None


# Ranges of a Logitech C920, names as kernel 6.x reports them.
DEFAULT_CONTROLS = (
    ControlSpec(v4l2.CID_BRIGHTNESS, "brightness", "Brightness", v4l2.CTRL_TYPE_INTEGER, 0, 255, 1, 128),
    ControlSpec(v4l2.CID_AUTO_WHITE_BALANCE, "white_balance_automatic", "White Balance, Automatic",
                v4l2.CTRL_TYPE_BOOLEAN, 0, 1, 1, 1),
    ControlSpec(v4l2.CID_GAIN, "gain", "Gain", v4l2.CTRL_TYPE_INTEGER, 0, 255, 1, 0),
    ControlSpec(v4l2.CID_WHITE_BALANCE_TEMPERATURE, "white_balance_temperature", "White Balance Temperature",
                v4l2.CTRL_TYPE_INTEGER, 2000, 6500, 1, 4000, manual_when=(v4l2.CID_AUTO_WHITE_BALANCE, 0)),
    ControlSpec(v4l2.CID_EXPOSURE_AUTO, "auto_exposure", "Auto Exposure", v4l2.CTRL_TYPE_MENU, 0, 3, 1,
                v4l2.EXPOSURE_APERTURE_PRIORITY,
                menu={v4l2.EXPOSURE_MANUAL: "Manual Mode", v4l2.EXPOSURE_APERTURE_PRIORITY: "Aperture Priority Mode"}),
    ControlSpec(v4l2.CID_EXPOSURE_ABSOLUTE, "exposure_time_absolute", "Exposure Time, Absolute",
                v4l2.CTRL_TYPE_INTEGER, 3, 2047, 1, 250, manual_when=(v4l2.CID_EXPOSURE_AUTO, v4l2.EXPOSURE_MANUAL)),
    ControlSpec(v4l2.CID_FOCUS_ABSOLUTE, "focus_absolute", "Focus, Absolute", v4l2.CTRL_TYPE_INTEGER, 0, 250, 5, 0,
                manual_when=(v4l2.CID_FOCUS_AUTO, 0)),
    ControlSpec(v4l2.CID_FOCUS_AUTO, "focus_automatic_continuous", "Focus, Automatic Continuous",
                v4l2.CTRL_TYPE_BOOLEAN, 0, 1, 1, 1),
)


@dataclass(frozen=True)
class StreamFormat:
    """What the camera is set to: pixel format, size, frame rate, and the bytes one buffer holds."""
    fourcc: str
    width: int
    height: int
    fps: float
    sizeimage: int


@dataclass(frozen=True)
class ControlWrite:
    """One control write the camera received, and what came of it."""
    key: str
    cid: int
    requested: int
    applied: int | None  # the value the camera took (rounded, clamped), None when refused
    error: str | None  # errno name when refused
    pid: int
    ioctl: str


class Reply(NamedTuple):
    result: int  # 0, -errno, or RESULT_HANG
    data: bytes  # the argument struct, as the caller gets it back
    aux: int = 0  # REQBUFS: bytes per buffer
    payload: bytes = b""  # DQBUF: the frame


class Node:
    """One /dev/videoN of one plug-in: the controller's end of its FIFO, and the FIFO's identity."""

    def __init__(self, index: int, role: Literal["capture", "metadata"], fd: int) -> None:
        st = os.fstat(fd)
        self.index = index
        self.role = role
        self.fd = fd  # opened read-write: writes wake select(), reads drain it
        self.identity = (st.st_dev, st.st_ino)

    @property
    def path(self) -> str:
        return f"/dev/video{self.index}"

    def wake(self) -> None:
        if self.fd >= 0:
            os.write(self.fd, b"\x01")

    def drain(self) -> None:
        if self.fd < 0:
            return
        try:
            while os.read(self.fd, 4096):
                pass
        except BlockingIOError:
            pass

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class Handle:
    """One open file of the camera; `alive()` tells whether the process behind it still holds it."""

    def __init__(self, pid: int, node: Node, alive: Callable[[], bool]) -> None:
        self.pid = pid
        self.node = node
        self.alive = alive


class V4l2Error(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(errno.errorcode.get(code, str(code)))
        self.code = code


class _Frame(NamedTuple):
    index: int
    sequence: int
    data: bytes
    timestamp: float


def _kernel_version() -> int:
    parts = [int("".join(ch for ch in p if ch.isdigit()) or 0) for p in platform.release().split(".")[:3]]
    major, minor, patch = [*parts, 0, 0, 0][:3]
    return (major << 16) | (min(minor, 255) << 8) | min(patch, 255)


def _page_align(size: int) -> int:
    page = os.sysconf("SC_PAGE_SIZE")
    return (size + page - 1) // page * page


class UvcDevice:
    """One plug-in of the camera. Every method expects the caller's lock to be held."""

    def __init__(self, nodes: list[Node], *, card: str, modes: tuple[Mode, ...] = DEFAULT_MODES,
                 controls: tuple[ControlSpec, ...] = DEFAULT_CONTROLS, log: list[ControlWrite] | None = None) -> None:
        self.nodes = nodes
        self.card = card
        self.modes = modes
        self.fourccs = list(dict.fromkeys(m.fourcc for m in modes))  # ENUM_FMT order
        self.specs = {c.cid: c for c in sorted(controls, key=lambda c: c.cid)}
        self.values = {c.cid: c.default for c in controls}
        self.log = log if log is not None else []
        default = next(m for m in modes if m.fourcc == "MJPG") if "MJPG" in self.fourccs else modes[0]
        self.default_mode = default
        self.mode = default
        self.fps = default.fps[0]
        self.gone = False
        self.handles: set[Handle] = set()
        self.owner: Handle | None = None
        self.buffer_length = 0
        self.buffer_state: list[str] = []  # per buffer: "dequeued", "queued" or "done"
        self.queued: deque[int] = deque()
        self.done: deque[_Frame] = deque()
        self.streaming = False
        self.sequence = 0
        self.frames_delivered = 0
        self.frames_dropped = 0
        self.hangs_left = 0  # DQBUF calls still to hang; -1: all of them
        self._handlers: dict[int, Callable[[Handle, bytes], Reply]] = {
            v4l2.VIDIOC_QUERYCAP: self._querycap,
            v4l2.VIDIOC_ENUM_FMT: self._enum_fmt,
            v4l2.VIDIOC_ENUM_FRAMESIZES: self._enum_framesizes,
            v4l2.VIDIOC_ENUM_FRAMEINTERVALS: self._enum_frameintervals,
            v4l2.VIDIOC_G_FMT: self._g_fmt,
            v4l2.VIDIOC_TRY_FMT: self._try_fmt,
            v4l2.VIDIOC_S_FMT: self._s_fmt,
            v4l2.VIDIOC_G_PARM: self._g_parm,
            v4l2.VIDIOC_S_PARM: self._s_parm,
            v4l2.VIDIOC_ENUMINPUT: self._enuminput,
            v4l2.VIDIOC_G_INPUT: self._g_input,
            v4l2.VIDIOC_S_INPUT: self._s_input,
            v4l2.VIDIOC_REQBUFS: self._reqbufs,
            v4l2.VIDIOC_QUERYBUF: self._querybuf,
            v4l2.VIDIOC_QBUF: self._qbuf,
            v4l2.VIDIOC_DQBUF: self._dqbuf,
            v4l2.VIDIOC_STREAMON: self._streamon,
            v4l2.VIDIOC_STREAMOFF: self._streamoff,
            v4l2.VIDIOC_QUERYCTRL: self._queryctrl,
            v4l2.VIDIOC_QUERYMENU: self._querymenu,
            v4l2.VIDIOC_G_CTRL: self._g_ctrl,
            v4l2.VIDIOC_S_CTRL: self._s_ctrl,
            v4l2.VIDIOC_G_EXT_CTRLS: self._ext_ctrls,
            v4l2.VIDIOC_S_EXT_CTRLS: self._ext_ctrls,
            v4l2.VIDIOC_TRY_EXT_CTRLS: self._ext_ctrls,
        }
        self._ext_request = 0  # which of the three EXT_CTRLS calls is being answered

    # -- state the tests read ------------------------------------------------------------------------
    @property
    def format(self) -> StreamFormat:
        return StreamFormat(self.mode.fourcc, self.mode.width, self.mode.height, float(self.fps), self._sizeimage())

    @property
    def buffer_count(self) -> int:
        return len(self.buffer_state)

    def node_for(self, identity: tuple[int, int]) -> Node | None:
        return next((n for n in self.nodes if n.identity == identity), None)

    # -- files ---------------------------------------------------------------------------------------
    def open(self, handle: Handle) -> None:
        if self.gone:
            raise V4l2Error(errno.ENODEV)
        self.handles.add(handle)

    def close(self, handle: Handle) -> None:
        self.handles.discard(handle)
        if self.owner is handle:
            self._release_stream()

    def ioctl(self, handle: Handle, request: int, arg: bytes) -> Reply:
        """Answer one ioctl; errors come back as a negative errno with the argument unchanged."""
        handler = self._handlers.get(request)
        try:
            if self.gone:
                raise V4l2Error(errno.ENODEV)
            if handler is None or (handle.node.role == "metadata" and request != v4l2.VIDIOC_QUERYCAP):
                raise V4l2Error(errno.ENOTTY)
            self._ext_request = request
            return handler(handle, arg)
        except V4l2Error as e:
            return Reply(-e.code, arg)

    # -- frames --------------------------------------------------------------------------------------
    def capture(self, data: bytes) -> int | None:
        """A frame from the sensor: its sequence number if a queued buffer took it, else None (dropped)."""
        if self.gone or not self.streaming:
            return None
        if len(data) > self.buffer_length:
            raise ValueError(f"frame of {len(data)} bytes does not fit a {self.buffer_length}-byte buffer")
        sequence = self.sequence
        self.sequence += 1
        if not self.queued:
            self.frames_dropped += 1
            return None
        index = self.queued.popleft()
        self.buffer_state[index] = "done"
        self.done.append(_Frame(index, sequence, data, time.clock_gettime(time.CLOCK_MONOTONIC)))
        self.frames_delivered += 1
        self._capture_node().wake()
        return sequence

    def hang(self, times: int) -> None:
        """The next `times` DQBUF calls (-1: all) block in the driver; a waiting select() returns first."""
        self.hangs_left = times
        if self.streaming and not self.gone:
            self._capture_node().wake()

    def unplug(self) -> None:
        self.gone = True
        self.streaming = False
        self.queued.clear()
        self.done.clear()

    # -- ownership -----------------------------------------------------------------------------------
    def _acquire(self, handle: Handle) -> None:
        if self.owner is not None and self.owner is not handle and not self.owner.alive():
            self._release_stream()  # the process died; its file closes as we look
        if self.owner is None:
            self.owner = handle
        elif self.owner is not handle:
            raise V4l2Error(errno.EBUSY)

    def _require_owner(self, handle: Handle) -> None:
        if self.owner is not handle:
            raise V4l2Error(errno.EBUSY)

    def _release_stream(self) -> None:
        self.streaming = False
        self._free_buffers()
        self.owner = None

    def _free_buffers(self) -> None:
        self.buffer_state = []
        self.buffer_length = 0
        self.queued.clear()
        self.done.clear()
        self._capture_node().drain()

    def _capture_node(self) -> Node:
        return next(n for n in self.nodes if n.role == "capture")

    # -- capability, formats -------------------------------------------------------------------------
    def _querycap(self, handle: Handle, arg: bytes) -> Reply:
        device_caps = v4l2.CAP_STREAMING | v4l2.CAP_EXT_PIX_FORMAT | (
            v4l2.CAP_VIDEO_CAPTURE if handle.node.role == "capture" else v4l2.CAP_META_CAPTURE)
        all_caps = v4l2.CAP_VIDEO_CAPTURE | v4l2.CAP_STREAMING | v4l2.CAP_EXT_PIX_FORMAT | v4l2.CAP_DEVICE_CAPS
        if any(n.role == "metadata" for n in self.nodes):
            all_caps |= v4l2.CAP_META_CAPTURE
        cap = v4l2.Capability(driver=b"uvcvideo", card=self.card.encode()[:31],
                              bus_info=b"usb-0000:00:14.0-1", version=_kernel_version(),
                              capabilities=all_caps, device_caps=device_caps)
        return Reply(0, bytes(cap))

    def _enum_fmt(self, _handle: Handle, arg: bytes) -> Reply:
        desc = v4l2.FmtDesc.from_buffer_copy(arg)
        _check_type(desc.type)
        if desc.index >= len(self.fourccs):
            raise V4l2Error(errno.EINVAL)
        code = self.fourccs[desc.index]
        desc.flags = v4l2.FMT_FLAG_COMPRESSED if code == "MJPG" else 0
        desc.description = FORMAT_DESCRIPTIONS.get(code, code.encode())
        desc.pixelformat = v4l2.fourcc(code)
        return Reply(0, bytes(desc))

    def _enum_framesizes(self, _handle: Handle, arg: bytes) -> Reply:
        size = v4l2.FrmSizeEnum.from_buffer_copy(arg)
        modes = [m for m in self.modes if v4l2.fourcc(m.fourcc) == size.pixel_format]
        if size.index >= len(modes):
            raise V4l2Error(errno.EINVAL)
        size.type = v4l2.FRMSIZE_TYPE_DISCRETE
        size.discrete.width = modes[size.index].width
        size.discrete.height = modes[size.index].height
        return Reply(0, bytes(size))

    def _enum_frameintervals(self, _handle: Handle, arg: bytes) -> Reply:
        ival = v4l2.FrmIvalEnum.from_buffer_copy(arg)
        mode = next((m for m in self.modes if v4l2.fourcc(m.fourcc) == ival.pixel_format
                     and (m.width, m.height) == (ival.width, ival.height)), None)
        if mode is None or ival.index >= len(mode.fps):
            raise V4l2Error(errno.EINVAL)
        ival.type = v4l2.FRMIVAL_TYPE_DISCRETE
        ival.discrete.numerator = 1
        ival.discrete.denominator = mode.fps[ival.index]
        return Reply(0, bytes(ival))

    def _g_fmt(self, _handle: Handle, arg: bytes) -> Reply:
        fmt = v4l2.Format.from_buffer_copy(arg)
        _check_type(fmt.type)
        self._fill_pix(fmt.fmt.pix, self.mode)
        return Reply(0, bytes(fmt))

    def _try_fmt(self, _handle: Handle, arg: bytes) -> Reply:
        fmt = v4l2.Format.from_buffer_copy(arg)
        _check_type(fmt.type)
        self._fill_pix(fmt.fmt.pix, self._negotiate(fmt.fmt.pix))
        return Reply(0, bytes(fmt))

    def _s_fmt(self, handle: Handle, arg: bytes) -> Reply:
        fmt = v4l2.Format.from_buffer_copy(arg)
        _check_type(fmt.type)
        self._acquire(handle)
        if self.buffer_state:
            raise V4l2Error(errno.EBUSY)  # the format cannot change under allocated buffers
        self.mode = self._negotiate(fmt.fmt.pix)
        self.fps = _nearest_fps(self.mode.fps, 1.0 / self.fps)
        self._fill_pix(fmt.fmt.pix, self.mode)
        return Reply(0, bytes(fmt))

    def _negotiate(self, pix: v4l2.PixFormat) -> Mode:
        code = v4l2.fourcc_str(pix.pixelformat)
        if code not in self.fourccs:
            code = self.default_mode.fourcc

        def distance(m: Mode) -> int:  # uvcvideo's measure of how far a frame size is from the request
            overlap = min(m.width, pix.width) * min(m.height, pix.height)
            return m.width * m.height + pix.width * pix.height - 2 * overlap
        return min((m for m in self.modes if m.fourcc == code), key=distance)

    def _sizeimage(self, mode: Mode | None = None) -> int:
        mode = mode or self.mode
        return mode.width * mode.height * 2

    def _fill_pix(self, pix: v4l2.PixFormat, mode: Mode) -> None:
        pix.width = mode.width
        pix.height = mode.height
        pix.pixelformat = v4l2.fourcc(mode.fourcc)
        pix.field = v4l2.FIELD_NONE
        pix.bytesperline = 0 if mode.fourcc == "MJPG" else mode.width * 2
        pix.sizeimage = self._sizeimage(mode)
        pix.colorspace = v4l2.COLORSPACE_SRGB
        pix.priv = 0xFEEDCAFE  # V4L2_PIX_FMT_PRIV_MAGIC: the extended fields below are valid
        pix.flags = pix.ycbcr_enc = pix.quantization = pix.xfer_func = 0

    # -- frame rate, input ---------------------------------------------------------------------------
    def _g_parm(self, _handle: Handle, arg: bytes) -> Reply:
        parm = v4l2.StreamParm.from_buffer_copy(arg)
        _check_type(parm.type)
        ctypes.memset(ctypes.addressof(parm.parm), 0, ctypes.sizeof(parm.parm))
        parm.parm.capture.capability = v4l2.CAP_TIMEPERFRAME
        parm.parm.capture.timeperframe.numerator = 1
        parm.parm.capture.timeperframe.denominator = self.fps
        return Reply(0, bytes(parm))

    def _s_parm(self, handle: Handle, arg: bytes) -> Reply:
        parm = v4l2.StreamParm.from_buffer_copy(arg)
        _check_type(parm.type)
        self._acquire(handle)
        if self.streaming:
            raise V4l2Error(errno.EBUSY)
        tpf = parm.parm.capture.timeperframe
        interval = tpf.numerator / tpf.denominator if tpf.denominator else float("inf")
        self.fps = _nearest_fps(self.mode.fps, interval)
        return self._g_parm(handle, arg)

    def _enuminput(self, _handle: Handle, arg: bytes) -> Reply:
        inp = v4l2.Input.from_buffer_copy(arg)
        if inp.index != 0:
            raise V4l2Error(errno.EINVAL)
        inp.name = b"Camera 1"
        inp.type = v4l2.INPUT_TYPE_CAMERA
        return Reply(0, bytes(inp))

    def _g_input(self, _handle: Handle, _arg: bytes) -> Reply:
        return Reply(0, bytes(ctypes.c_int(0)))

    def _s_input(self, handle: Handle, arg: bytes) -> Reply:
        self._acquire(handle)
        if ctypes.c_int.from_buffer_copy(arg).value != 0:
            raise V4l2Error(errno.EINVAL)
        return Reply(0, arg)

    # -- buffers -------------------------------------------------------------------------------------
    def _reqbufs(self, handle: Handle, arg: bytes) -> Reply:
        req = v4l2.RequestBuffers.from_buffer_copy(arg)
        _check_type(req.type)
        if req.memory != v4l2.MEMORY_MMAP:
            raise V4l2Error(errno.EINVAL)
        self._acquire(handle)
        if self.streaming:
            raise V4l2Error(errno.EBUSY)
        req.capabilities = v4l2.BUF_CAP_SUPPORTS_MMAP
        if req.count == 0:
            self._release_stream()  # no buffers: the file gives up the stream
            return Reply(0, bytes(req))
        req.count = min(req.count, MAX_BUFFERS)
        self._free_buffers()
        self.buffer_length = _page_align(self._sizeimage())
        self.buffer_state = ["dequeued"] * req.count
        return Reply(0, bytes(req), aux=self.buffer_length)

    def _buffer(self, handle: Handle, arg: bytes) -> v4l2.Buffer:
        self._require_owner(handle)
        buf = v4l2.Buffer.from_buffer_copy(arg)
        _check_type(buf.type)
        if buf.memory != v4l2.MEMORY_MMAP or buf.index >= len(self.buffer_state):
            raise V4l2Error(errno.EINVAL)
        return buf

    def _fill_buffer(self, buf: v4l2.Buffer, frame: _Frame | None = None) -> None:
        state = self.buffer_state[buf.index]
        buf.flags = v4l2.BUF_FLAG_MAPPED | v4l2.BUF_FLAG_TIMESTAMP_MONOTONIC | v4l2.BUF_FLAG_TSTAMP_SRC_SOE | (
            v4l2.BUF_FLAG_QUEUED if state == "queued" else v4l2.BUF_FLAG_DONE if state == "done" else 0)
        buf.field = v4l2.FIELD_NONE
        buf.m.offset = buf.index * self.buffer_length
        buf.length = self.buffer_length
        if frame is not None:
            buf.bytesused = len(frame.data)
            buf.sequence = frame.sequence
            buf.timestamp.tv_sec = int(frame.timestamp)
            buf.timestamp.tv_usec = int((frame.timestamp % 1) * 1_000_000)

    def _querybuf(self, handle: Handle, arg: bytes) -> Reply:
        buf = self._buffer(handle, arg)
        self._fill_buffer(buf)
        return Reply(0, bytes(buf))

    def _qbuf(self, handle: Handle, arg: bytes) -> Reply:
        buf = self._buffer(handle, arg)
        if self.buffer_state[buf.index] != "dequeued":
            raise V4l2Error(errno.EINVAL)
        self.buffer_state[buf.index] = "queued"
        self.queued.append(buf.index)
        self._fill_buffer(buf)
        return Reply(0, bytes(buf))

    def _dqbuf(self, handle: Handle, arg: bytes) -> Reply:
        self._require_owner(handle)
        if self.hangs_left:
            self.hangs_left -= self.hangs_left > 0
            return Reply(RESULT_HANG, arg)
        buf = v4l2.Buffer.from_buffer_copy(arg)
        _check_type(buf.type)
        if not self.streaming:
            raise V4l2Error(errno.EINVAL)
        if not self.done:
            raise V4l2Error(errno.EAGAIN)
        frame = self.done.popleft()
        buf.index = frame.index
        buf.memory = v4l2.MEMORY_MMAP
        self._fill_buffer(buf, frame)  # flags as the buffer leaves the done queue: DONE, as vb2 reports
        self.buffer_state[frame.index] = "dequeued"
        return Reply(0, bytes(buf), payload=frame.data)

    def _streamon(self, handle: Handle, arg: bytes) -> Reply:
        self._require_owner(handle)
        _check_type(ctypes.c_int.from_buffer_copy(arg).value)
        if not self.buffer_state:
            raise V4l2Error(errno.EINVAL)
        if not self.streaming:
            self.streaming = True
            self.sequence = 0
        return Reply(0, arg)

    def _streamoff(self, handle: Handle, arg: bytes) -> Reply:
        self._require_owner(handle)
        _check_type(ctypes.c_int.from_buffer_copy(arg).value)
        self.streaming = False
        self.buffer_state = ["dequeued"] * len(self.buffer_state)
        self.queued.clear()
        self.done.clear()
        self._capture_node().drain()
        return Reply(0, arg)

    # -- controls ------------------------------------------------------------------------------------
    def _spec(self, cid: int) -> ControlSpec:
        spec = self.specs.get(cid)
        if spec is None:
            raise V4l2Error(errno.EINVAL)
        return spec

    def _inactive(self, spec: ControlSpec, pending: Mapping[int, int] | None = None) -> bool:
        if spec.manual_when is None:
            return False
        master, manual = spec.manual_when
        value = (pending or {}).get(master, self.values[master])
        return value != manual

    def _queryctrl(self, _handle: Handle, arg: bytes) -> Reply:
        query = v4l2.QueryCtrl.from_buffer_copy(arg)
        if query.id & v4l2.CTRL_FLAG_NEXT_CTRL:
            after = query.id & ~(v4l2.CTRL_FLAG_NEXT_CTRL | v4l2.CTRL_FLAG_NEXT_COMPOUND)
            spec = next((s for cid, s in self.specs.items() if cid > after), None)
            if spec is None:
                raise V4l2Error(errno.EINVAL)
        else:
            spec = self._spec(query.id)
        query.id = spec.cid
        query.type = spec.kind
        query.name = spec.title.encode()
        query.minimum, query.maximum, query.step = spec.minimum, spec.maximum, spec.step
        query.default_value = spec.default
        query.flags = v4l2.CTRL_FLAG_INACTIVE if self._inactive(spec) else 0
        return Reply(0, bytes(query))

    def _querymenu(self, _handle: Handle, arg: bytes) -> Reply:
        menu = v4l2.QueryMenu.from_buffer_copy(arg)
        spec = self._spec(menu.id)
        if spec.kind != v4l2.CTRL_TYPE_MENU or menu.index not in spec.menu:
            raise V4l2Error(errno.EINVAL)
        menu.name = spec.menu[menu.index].encode()
        return Reply(0, bytes(menu))

    def _g_ctrl(self, _handle: Handle, arg: bytes) -> Reply:
        ctrl = v4l2.Control.from_buffer_copy(arg)
        ctrl.value = self.values[self._spec(ctrl.id).cid]
        return Reply(0, bytes(ctrl))

    def _s_ctrl(self, handle: Handle, arg: bytes) -> Reply:
        ctrl = v4l2.Control.from_buffer_copy(arg)
        spec = self._spec(ctrl.id)
        try:
            if self._inactive(spec):
                raise V4l2Error(errno.EACCES)
            applied = self._validate(spec, ctrl.value)
        except V4l2Error as e:
            self._log(handle, spec, ctrl.value, None, e, "VIDIOC_S_CTRL")
            raise
        self.values[spec.cid] = applied
        self._log(handle, spec, ctrl.value, applied, None, "VIDIOC_S_CTRL")
        ctrl.value = applied
        return Reply(0, bytes(ctrl))

    def _validate(self, spec: ControlSpec, value: int) -> int:
        if spec.kind == v4l2.CTRL_TYPE_MENU:
            if not spec.minimum <= value <= spec.maximum:
                raise V4l2Error(errno.ERANGE)
            if value not in spec.menu:
                raise V4l2Error(errno.EINVAL)
            return value
        step = max(spec.step, 1)
        rounded = spec.minimum + round((value - spec.minimum) / step) * step
        return max(spec.minimum, min(spec.maximum, rounded))

    def _log(self, handle: Handle, spec: ControlSpec, requested: int, applied: int | None,
             error: V4l2Error | None, ioctl: str) -> None:
        self.log.append(ControlWrite(spec.key, spec.cid, requested, applied,
                                     errno.errorcode[error.code] if error else None, handle.pid, ioctl))

    def _ext_ctrls(self, handle: Handle, arg: bytes) -> Reply:
        which, count, _, _ = struct.unpack_from(EXT_HEAD, arg)
        items = [struct.unpack_from(EXT_ITEM, arg, EXT_HEAD_SIZE + i * EXT_ITEM_SIZE) for i in range(count)]
        values = [value for _cid, _size, value in items]
        try:
            for index, (cid, _size, _value) in enumerate(items):
                if cid not in self.specs:
                    raise _ControlError(errno.EINVAL, index)
            if self._ext_request == v4l2.VIDIOC_G_EXT_CTRLS:
                values = [self.specs[cid].default if which == v4l2.CTRL_WHICH_DEF_VAL else self.values[cid]
                          for cid, _size, _value in items]
            else:
                values = self._set_controls(handle, items, commit=self._ext_request == v4l2.VIDIOC_S_EXT_CTRLS)
            error_idx, result = 0, 0
        except _ControlError as e:
            error_idx, result = e.index, -e.code
        out = struct.pack(EXT_HEAD, which, count, error_idx, 0) + b"".join(
            struct.pack(EXT_ITEM, cid, size, value) for (cid, size, _), value in zip(items, values, strict=True))
        return Reply(result, out)

    def _set_controls(self, handle: Handle, items: list[tuple[int, int, int]], *, commit: bool) -> list[int]:
        """TRY/S_EXT_CTRLS: all or nothing; a mode control set in the same call unlocks its manual value."""
        pending = {cid: value for cid, _size, value in items}  # the last write of a mode control counts
        applied = []
        for index, (cid, _size, value) in enumerate(items):
            spec = self.specs[cid]
            try:
                if self._inactive(spec, pending):
                    raise V4l2Error(errno.EACCES)
                applied.append(self._validate(spec, value))
            except V4l2Error as e:
                if commit:
                    self._log(handle, spec, value, None, e, "VIDIOC_S_EXT_CTRLS")
                raise _ControlError(e.code, index) from None
        if commit:
            for (cid, _size, value), new in zip(items, applied, strict=True):
                self.values[cid] = new
                self._log(handle, self.specs[cid], value, new, None, "VIDIOC_S_EXT_CTRLS")
        return applied


class _ControlError(V4l2Error):
    def __init__(self, code: int, index: int) -> None:
        super().__init__(code)
        self.index = index


def _check_type(buf_type: int) -> None:
    if buf_type != v4l2.BUF_TYPE_VIDEO_CAPTURE:
        raise V4l2Error(errno.EINVAL)


def _nearest_fps(offered: tuple[int, ...], interval: float) -> int:
    return min(offered, key=lambda fps: abs(1.0 / fps - interval))
