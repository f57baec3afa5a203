"""EmulatedUvcCamera: a USB camera in user space, opened by real V4L2 programs through uvc_shim.c.

Inside a DevNamespace the camera has a /dev/videoN node (and /dev/videoN+1, its metadata node, as
uvcvideo creates) and a /dev/v4l/by-id/usb-<serial>-video-index0 link. A program started with
`camera.popen()` (LD_PRELOAD and the socket in its environment) opens the node with OpenCV, ustreamer
or plain ioctls; each of its calls is answered here, by a UvcDevice (device.py).

The test supplies the frames (`send_jpeg()`, `send_yuyv()`, or `play()` at the negotiated rate), reads
back what the program set (`format`, `buffer_count`, `controls()`, `control_writes`), and injects faults:
`stall()` (no frames: select() times out), `hang_dqbuf()` (DQBUF never returns; only SIGKILL ends the
process), `unplug()` (ENODEV, node and link gone), `replug()` (same or another /dev/videoN behind the
same by-id link, controls back to defaults). Corrupt or truncated JPEGs are just bytes to send.

    with DevNamespace() as ns, EmulatedUvcCamera(ns) as cam:
        cam.play()  # the synthetic pattern, frame number in the pixels
        proc = cam.popen([sys.executable, "-m", "cam_guard.camera_node", "--ros-args",
                          "-p", f"device:={cam.by_id_path}"])
        cam.wait_streaming(timeout=10)
"""

import contextlib
import errno
import os
import socket
import struct
import subprocess
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import cv2
import numpy as np

from cam_guard.capture.synthetic import COUNTER_BITS
from cam_guard.testing.uvc import v4l2
from cam_guard.testing.uvc.device import (
    DEFAULT_CONTROLS,
    DEFAULT_MODES,
    ControlSpec,
    ControlWrite,
    Handle,
    Mode,
    Node,
    Reply,
    StreamFormat,
    UvcDevice,
)
from cam_guard.testing.uvc.namespace import DevNamespace
from cam_guard.testing.uvc.shim import build_shim

# Wire protocol of uvc_shim.c.
OP_OPEN = 1
REQUEST = struct.Struct("<IIII")  # op, request, size, reserved
REPLY = struct.Struct("<iIIIQ")  # result, size, payload, reserved, aux
OPEN_INFO = struct.Struct("<IIQQ")  # pid, flags, dev, ino; the path follows

COUNTER_BLOCK = 16  # pixels per counter bit, as synthetic.py draws them

FrameSource = Callable[[int, StreamFormat], bytes]
"""Draws frame `number` in the camera's current format: JPEG bytes for MJPG, packed YUYV for YUYV."""


@dataclass(frozen=True)
class Call:
    """One call a program made on the camera, as the camera answered it."""
    time: float  # time.monotonic()
    pid: int
    name: str  # VIDIOC_..., or "open"
    result: int  # 0 or -errno


@dataclass(frozen=True)
class PlayedFrame:
    number: int  # the frame number the source drew
    sequence: int | None  # the v4l2_buffer.sequence it went out with; None: dropped, no buffer was queued
    data: bytes


def synthetic_source(quality: int = 80, red: int | None = None) -> FrameSource:
    """A gradient with the frame number in the top-left blocks, where read_frame_counter() finds it
    (frames at least 256 pixels wide), in whatever format the camera streams. Cheap enough to run at
    30 fps at 1280x720 beside the program under test: only the counter is drawn per frame. A constant
    `red` channel makes the picture coloured, so that a reader's RGB/BGR order shows."""
    backgrounds: dict[tuple[int, int], np.ndarray] = {}

    def draw(number: int, fmt: StreamFormat) -> bytes:
        background = backgrounds.get((fmt.width, fmt.height))
        if background is None:
            background = np.empty((fmt.height, fmt.width, 3), np.uint8)
            background[...] = np.linspace(0, 255, fmt.width, dtype=np.uint8)[None, :, None]
            if red is not None:
                background[..., 2] = red
            backgrounds[(fmt.width, fmt.height)] = background
        frame = background.copy()
        stamp_counter(frame, number)
        if fmt.fourcc == "YUYV":
            return yuyv_from_bgr(frame)
        ok, jpeg = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise ValueError("JPEG encoding failed")
        return jpeg.tobytes()
    return draw


def stamp_counter(frame: np.ndarray, number: int) -> None:
    """Write `number` as the black/white blocks cam_guard.capture.synthetic.read_frame_counter() decodes."""
    width = COUNTER_BITS * COUNTER_BLOCK
    if frame.shape[1] >= width and frame.shape[0] >= COUNTER_BLOCK:
        bits = ((number >> np.arange(COUNTER_BITS)) & 1).astype(np.uint8) * 255
        frame[:COUNTER_BLOCK, :width] = np.repeat(bits, COUNTER_BLOCK)[None, :, None]


def yuyv_from_bgr(bgr: np.ndarray) -> bytes:
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_YUYV).tobytes()


class EmulatedUvcCamera:
    """One USB camera, plugged in at start() as /dev/video`node` (default: the first free number)."""

    def __init__(self, namespace: DevNamespace, *, serial: str = "cam_guard_Emulated_UVC",
                 card: str = "cam_guard Emulated UVC", node: int | None = None, metadata_node: bool = True,
                 modes: tuple[Mode, ...] = DEFAULT_MODES, controls: tuple[ControlSpec, ...] = DEFAULT_CONTROLS) -> None:
        self.namespace = namespace
        self.serial = serial
        self.card = card
        self.first_node = node
        self.metadata_node = metadata_node
        self.modes = modes
        self.control_specs = controls
        self._control_writes: list[ControlWrite] = []  # every control write received, across plug-ins
        self._played: deque[PlayedFrame] = deque(maxlen=512)
        self._calls: deque[Call] = deque(maxlen=4096)
        self._cond = threading.Condition()  # guards every device and every field below
        self._device: UvcDevice | None = None  # the plugged-in camera; None while unplugged
        self._devices: list[UvcDevice] = []  # plug-ins, while any file still has them open
        self._tmp: str | None = None
        self._listener: socket.socket | None = None
        self._connections: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._shim = ""
        self._player: threading.Thread | None = None
        self._player_stop = threading.Event()
        self._stalled = False
        self._player_error: BaseException | None = None

    # -- lifecycle -----------------------------------------------------------------------------------
    def start(self) -> "EmulatedUvcCamera":
        self._shim = str(build_shim())
        self._tmp = tempfile.mkdtemp(prefix="cam_guard-uvc-")
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(self.socket_path)
        self._listener.listen(16)
        self._listener.settimeout(0.1)  # accept() wakes to see stop()
        self._spawn(self._accept_loop)
        self.replug(self.first_node)
        return self

    def stop(self) -> None:
        """Unplug and stop answering; programs still inside get ENODEV. Raises what play()'s source raised."""
        try:
            self.stop_playing()
        finally:
            self._shut_down()

    def _shut_down(self) -> None:
        with self._cond:
            if self._device is not None:
                self._unplug_locked()
        self._stopping.set()
        for conn in list(self._connections):
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)  # programs still inside see the camera gone: ENODEV
        for thread in self._threads:
            thread.join(timeout=5)
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        if self._tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.socket_path)
                os.rmdir(self._tmp)
            self._tmp = None

    def __enter__(self) -> "EmulatedUvcCamera":
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # -- programs that use the camera ----------------------------------------------------------------
    @property
    def socket_path(self) -> str:
        assert self._tmp is not None, "camera not started"
        return os.path.join(self._tmp, "uvc.sock")

    @property
    def shim_path(self) -> str:
        assert self._shim, "camera not started"
        return self._shim

    def env(self) -> dict[str, str]:
        """What a program needs in its environment to see the camera (inside the namespace)."""
        return camera_env(self)

    def popen(self, cmd: Sequence[str], *, env: Mapping[str, str] | None = None, **kwargs: Any
              ) -> "subprocess.Popen[Any]":
        """Start `cmd` inside the namespace, seeing the camera; SIGKILLed at the namespace's close()."""
        return self.namespace.popen(cmd, env={**os.environ, **(env or {}), **self.env()}, **kwargs)

    @property
    def by_id_path(self) -> str:
        return f"/dev/v4l/by-id/usb-{self.serial}-video-index0"

    @property
    def node_path(self) -> str | None:
        """/dev/videoN of the capture node now, None while unplugged."""
        with self._cond:
            return self._device.nodes[0].path if self._device else None

    # -- state the program set -----------------------------------------------------------------------
    @property
    def format(self) -> StreamFormat:
        return self._read(lambda d: d.format)

    @property
    def streaming(self) -> bool:
        return self._read(lambda d: d.streaming)

    @property
    def buffer_count(self) -> int:
        return self._read(lambda d: d.buffer_count)

    @property
    def owner_pid(self) -> int | None:
        """PID of the process whose file owns the stream (the one uvcvideo would answer EBUSY for)."""
        return self._read(lambda d: d.owner.pid if d.owner else None)

    @property
    def buffers_queued(self) -> int:
        """Buffers waiting for a frame: a frame sent now is dropped when there are none."""
        return self._read(lambda d: len(d.queued))

    @property
    def frames_delivered(self) -> int:
        """Frames of this plug-in that went out in a buffer."""
        return self._read(lambda d: d.frames_delivered)

    @property
    def frames_dropped(self) -> int:
        """Frames of this plug-in that found no queued buffer."""
        return self._read(lambda d: d.frames_dropped)

    @property
    def control_writes(self) -> list[ControlWrite]:
        """Every control write the camera received (S_CTRL, S_EXT_CTRLS), oldest first, across plug-ins."""
        with self._cond:
            return list(self._control_writes)

    def played(self) -> list[PlayedFrame]:
        """The last 512 frames play() drew, oldest first."""
        with self._cond:
            return list(self._played)

    def calls(self) -> list[Call]:
        """The last 4096 calls programs made on the camera, oldest first: for a failing test's message."""
        with self._cond:
            return list(self._calls)

    def controls(self) -> dict[str, int]:
        """Current value of every control, by v4l2-ctl name."""
        return self._read(lambda d: {d.specs[cid].key: value for cid, value in d.values.items()})

    def _read(self, get: Callable[[UvcDevice], Any]) -> Any:
        with self._cond:
            if self._device is None:
                raise RuntimeError("the camera is unplugged")
            return get(self._device)

    def wait_until(self, predicate: Callable[[], bool], timeout: float, what: str = "condition") -> None:
        """Wait until `predicate()` (checked at every call the camera answers) holds; TimeoutError if not."""
        with self._cond:
            if not self._cond.wait_for(predicate, timeout):
                raise TimeoutError(f"emulated camera: no {what} within {timeout} s")

    def wait_streaming(self, timeout: float) -> StreamFormat:
        self.wait_until(lambda: self._device is not None and self._device.streaming, timeout, "STREAMON")
        return self.format

    def wait_released(self, timeout: float) -> None:
        """Until no file owns the stream (the owner closed it, freed its buffers or died)."""
        self.wait_until(lambda: self._device is None or self._device.owner is None, timeout, "release")

    def wait_closed(self, timeout: float) -> None:
        """Until no file is open on any node, plugged or unplugged (a killed holder's connection is
        noticed here a moment after the process is gone)."""
        self.wait_until(lambda: not any(d.handles for d in self._devices), timeout, "last close")

    # -- frames --------------------------------------------------------------------------------------
    def send_jpeg(self, data: bytes) -> int | None:
        """One MJPG frame, any bytes (corrupt, truncated, padded). Returns the sequence number it was
        delivered with, or None when it was dropped (not streaming, or no buffer queued)."""
        return self._send("MJPG", data)

    def send_yuyv(self, data: bytes) -> int | None:
        """One packed YUYV frame of the current size; see send_jpeg."""
        return self._send("YUYV", data)

    def _send(self, fourcc: str, data: bytes) -> int | None:
        with self._cond:
            device = self._device
            if device is None or not device.streaming:
                return None
            fmt = device.format
            if fmt.fourcc != fourcc:
                raise ValueError(f"the camera streams {fmt.fourcc}, not {fourcc}")
            if fourcc == "YUYV" and len(data) != fmt.width * fmt.height * 2:
                raise ValueError(f"a {fmt.width}x{fmt.height} YUYV frame has {fmt.width * fmt.height * 2} bytes")
            return device.capture(data)

    def play(self, source: FrameSource | None = None, fps: float | None = None) -> None:
        """Send frames from `source` (default: synthetic_source()) while the camera streams, at `fps` or the
        negotiated rate, as a camera does. Frame numbers keep counting across reopens and replugs."""
        self.stop_playing()
        self._player_stop.clear()
        self._player = threading.Thread(target=self._play, args=(source or synthetic_source(), fps),
                                        name="uvc-player", daemon=True)
        self._player.start()

    def stop_playing(self) -> None:
        """Stop play(); raises what the frame source raised, if it did."""
        self._player_stop.set()
        if self._player is not None:
            self._player.join(timeout=5)
            self._player = None
        error, self._player_error = self._player_error, None
        if error is not None:
            raise RuntimeError("the emulated camera's frame source failed") from error

    def stall(self) -> None:
        """The camera keeps streaming but sends nothing: select() in the program times out."""
        with self._cond:
            self._stalled = True

    def resume(self) -> None:
        with self._cond:
            self._stalled = False

    def _play(self, source: FrameSource, fps: float | None) -> None:
        try:
            self._play_frames(source, fps)
        except BaseException as e:  # surfaces in stop_playing(): a dead player would look like a stall
            self._player_error = e

    def _play_frames(self, source: FrameSource, fps: float | None) -> None:
        number = 0
        due = time.monotonic()
        while not self._player_stop.is_set():
            with self._cond:
                device = self._device if not self._stalled else None
                fmt = device.format if device is not None and device.streaming else None
            if fmt is None:
                due = time.monotonic()
                self._player_stop.wait(0.01)
                continue
            data = source(number, fmt)
            with self._cond:
                # Dropped if the program changed the format while the frame was drawn.
                sequence = device.capture(data) if device is self._device and device.format == fmt else None
                self._played.append(PlayedFrame(number, sequence, data))
            number += 1
            due += 1.0 / (fps or fmt.fps)
            delay = due - time.monotonic()
            if delay < -1.0:
                due = time.monotonic()  # fell far behind (a loaded machine): do not burst to catch up
            self._player_stop.wait(max(0.0, delay))

    # -- faults --------------------------------------------------------------------------------------
    def hang_dqbuf(self, times: int | None = 1) -> None:
        """The next `times` DQBUF calls (None: every one, until replug) block inside the "driver" for good:
        no signal handler runs in them and only SIGKILL ends the process. A select() waiting for a frame
        returns first, so the program walks into the DQBUF."""
        with self._cond:
            if self._device is None:
                raise RuntimeError("the camera is unplugged")
            self._device.hang(-1 if times is None else times)

    def unplug(self) -> None:
        """The cable is pulled: every call on an open file fails with ENODEV, select() wakes, the node
        and the by-id link disappear, new opens fail with ENOENT."""
        with self._cond:
            if self._device is None:
                raise RuntimeError("the camera is already unplugged")
            self._unplug_locked()

    def replug(self, node: int | None = None) -> str:
        """Plug the camera (back) in with its controls at their defaults, as /dev/video`node`, or else at
        the first free number, which is another one while a process still holds the old node open (as
        the kernel does). The by-id link points at the new node. Returns the node's path."""
        with self._cond:
            if self._device is not None:
                self._unplug_locked()
            index = self._free_node() if node is None else node
            nodes = [self._make_node(index, "capture")]
            if self.metadata_node:
                nodes.append(self._make_node(index + 1, "metadata"))
            self._device = UvcDevice(nodes, card=self.card, modes=self.modes,
                                     controls=self.control_specs, log=self._control_writes)
            self._devices.append(self._device)
            self.namespace.makedirs("v4l/by-id")
            for i, n in enumerate(nodes):
                self.namespace.symlink(f"../../video{n.index}", f"v4l/by-id/usb-{self.serial}-video-index{i}")
            self._cond.notify_all()
            return nodes[0].path

    def _free_node(self) -> int:
        held = {n.index for d in self._devices if d.handles for n in d.nodes}  # unplugged, still open
        held |= {int(name[5:]) for name in self.namespace.listdir() if name[:5] == "video" and name[5:].isdigit()}
        width = 2 if self.metadata_node else 1
        index = 0
        while any(index + i in held for i in range(width)):
            index += 1
        return index

    def _make_node(self, index: int, role: Literal["capture", "metadata"]) -> Node:
        name = f"video{index}"
        self.namespace.unlink(name)
        self.namespace.mkfifo(name)
        return Node(index, role, self.namespace.open(name, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC))

    def _unplug_locked(self) -> None:
        device = self._device
        assert device is not None
        device.unplug()
        for i, n in enumerate(device.nodes):
            self.namespace.unlink(f"v4l/by-id/usb-{self.serial}-video-index{i}")
            self.namespace.unlink(f"video{n.index}")
            n.close()  # the last writer goes: every select()/poll() on the node wakes with POLLHUP
        self._device = None
        self._forget_released()
        self._cond.notify_all()

    def _forget_released(self) -> None:
        self._devices = [d for d in self._devices if d is self._device or d.handles]

    # -- serving the shim ----------------------------------------------------------------------------
    def _spawn(self, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name="uvc-camera", daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(None)
            with self._cond:
                self._connections.add(conn)
            self._spawn(self._serve, conn)

    def _serve(self, conn: socket.socket) -> None:
        """One open file of the camera, from open() until close() or the process's death."""
        handle: Handle | None = None
        device: UvcDevice | None = None
        try:
            while (head := _recv_exact(conn, REQUEST.size)) is not None:
                op, request, size, _ = REQUEST.unpack(head)
                arg = _recv_exact(conn, size) if size else b""
                if arg is None:
                    break
                with self._cond:
                    if op == OP_OPEN:
                        reply, handle, device = self._open(conn, arg)
                        name = "open"
                    elif handle is None or device is None:
                        reply, name = Reply(-errno.EBADF, arg), f"{request:#x}"
                    else:
                        reply = device.ioctl(handle, request, arg)
                        name = v4l2.IOCTL_NAMES.get(request, f"{request:#x}")
                    self._calls.append(Call(time.monotonic(), OPEN_INFO.unpack_from(arg)[0] if op == OP_OPEN
                                           else handle.pid if handle else 0, name, reply.result))
                    self._cond.notify_all()
                conn.sendall(REPLY.pack(reply.result, len(reply.data), len(reply.payload), 0, reply.aux)
                             + reply.data + reply.payload)
        except OSError:
            pass  # the program died mid-call, or stop() hung up
        finally:
            with self._cond:
                if handle is not None and device is not None:
                    device.close(handle)
                    self._forget_released()
                self._connections.discard(conn)
                self._cond.notify_all()
            conn.close()

    def _open(self, conn: socket.socket, arg: bytes) -> tuple[Reply, Handle | None, UvcDevice | None]:
        pid, _flags, dev, ino = OPEN_INFO.unpack_from(arg)
        for device in self._devices:
            node = device.node_for((dev, ino))
            if node is None:
                continue
            if device.gone:
                break
            handle = Handle(pid, node, lambda: _peer_alive(conn))
            device.open(handle)
            return Reply(0, b""), handle, device
        return Reply(-errno.ENODEV, b""), None, None


def camera_env(*cameras: EmulatedUvcCamera) -> dict[str, str]:
    """Environment in which a program inside the namespace sees all of `cameras` (LD_PRELOAD kept)."""
    preload = " ".join(dict.fromkeys([*(c.shim_path for c in cameras), *os.environ.get("LD_PRELOAD", "").split()]))
    return {"LD_PRELOAD": preload, "UVC_EMU_SOCKET": ":".join(c.socket_path for c in cameras)}


def _recv_exact(conn: socket.socket, size: int) -> bytes | None:
    chunks = []
    while size:
        chunk = conn.recv(size)
        if not chunk:
            return None
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _peer_alive(conn: socket.socket) -> bool:
    """Whether the process behind a connection still holds its file: a dead one's socket reads EOF at
    once (the kernel closes it at exit, before the parent can reap the process)."""
    try:
        return conn.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False
