"""The emulated UVC camera against real consumers: OpenCV's V4L2 backend, a raw V4L2 client, ustreamer.

Every consumer runs in its own process inside the camera's private mount namespace, with the shim
preloaded; it reports what it sees as JSON lines on stdout. The camera here supplies frames and faults
and tells what the consumer did to it.
"""

import contextlib
import ctypes
import errno
import glob
import hashlib
import http.client
import itertools
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from typing import Any

import cv2
import numpy as np
import pytest
from helpers import needs_uvc_emulator
from sensor_msgs.msg import CompressedImage

from cam_guard.testing.uvc import v4l2
from cam_guard.testing.uvc.camera import EmulatedUvcCamera, camera_env, synthetic_source
from cam_guard.testing.uvc.device import (
    DEFAULT_CONTROLS,
    DEFAULT_MODES,
    Handle,
    Node,
    StreamFormat,
    UvcDevice,
)
from cam_guard.testing.uvc.namespace import DevNamespace

pytestmark = needs_uvc_emulator

REPORT_TIMEOUT_S = 20.0  # a consumer process starting on a loaded 2-core machine: fail, don't hang

# A cv2.VideoCapture consumer. argv[1]: JSON options: path; set: [[CAP_PROP_name, value], ...] applied
# in order; get: [CAP_PROP_name, ...]; reads: how many reads before exiting; reopen: after a failed
# read, release and open again (every 20 ms) instead of reading on.
CV_CONSUMER = textwrap.dedent("""
    import hashlib, json, os, sys, time
    import cv2
    from cam_guard.capture.synthetic import read_frame_counter

    opts = json.loads(sys.argv[1])
    def say(event, **fields):
        print(json.dumps({"event": event, **fields}), flush=True)

    def open_camera():
        cap = cv2.VideoCapture(opts["path"], cv2.CAP_V4L2)
        if not cap.isOpened():
            return None
        sets = [cap.set(getattr(cv2, name), value) for name, value in opts.get("set", [])]
        gets = {name: cap.get(getattr(cv2, name)) for name in opts.get("get", [])}
        say("opened", node=os.path.realpath(opts["path"]), sets=sets, gets=gets)
        return cap

    cap = open_camera()
    if cap is None:
        say("open_failed")
    for _ in range(opts.get("reads", 1_000_000)):
        while cap is None:
            time.sleep(0.02)
            cap = open_camera()
        start = time.monotonic()
        ok, frame = cap.read()
        took = time.monotonic() - start
        if not ok:
            say("read_failed", took=took)
            if opts.get("reopen"):
                cap.release()
                cap = None
            continue
        raw = frame.ndim == 2 and frame.shape[0] == 1
        counter = None if raw else read_frame_counter(frame)
        say("frame", took=took, shape=list(frame.shape), counter=counter,
            sha=hashlib.sha256(frame.tobytes()).hexdigest() if raw else None)
""")


class Consumer:
    """A process inside the namespace whose JSON lines are read as they come (bounded waits only)."""

    def __init__(self, cameras: EmulatedUvcCamera | tuple[EmulatedUvcCamera, ...], argv: list[str],
                 env: dict[str, str] | None = None) -> None:
        cameras = cameras if isinstance(cameras, tuple) else (cameras,)
        self.proc = cameras[0].namespace.popen(argv, env={**os.environ, **(env or {}), **camera_env(*cameras)},
                                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.output: list[str] = []
        self._lines: queue.Queue[dict[str, Any]] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    @classmethod
    def opencv(cls, camera: EmulatedUvcCamera, env: dict[str, str] | None = None, **options: Any) -> "Consumer":
        options.setdefault("path", camera.by_id_path)
        return cls(camera, [sys.executable, "-c", CV_CONSUMER, json.dumps(options)], env)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line)
            with contextlib.suppress(json.JSONDecodeError):
                self._lines.put(json.loads(line))

    def next(self, event: str, timeout: float = REPORT_TIMEOUT_S) -> dict[str, Any]:
        """The next report of `event`, skipping others."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                report = self._lines.get(timeout=left)
            except queue.Empty:
                break
            if report.get("event") == event:
                return report
        raise AssertionError(f"no '{event}' from pid {self.pid} within {timeout} s; its output:\n"
                             + "".join(self.output[-40:]))

    def frames(self, count: int, timeout: float = REPORT_TIMEOUT_S) -> list[dict[str, Any]]:
        return [self.next("frame", timeout) for _ in range(count)]

    def quiet_for(self, seconds: float) -> bool:
        """True if nothing at all is reported for `seconds`."""
        try:
            self._lines.get(timeout=seconds)
        except queue.Empty:
            return True
        return False


@pytest.fixture
def camera() -> Iterator[EmulatedUvcCamera]:
    with DevNamespace() as ns, EmulatedUvcCamera(ns) as cam:
        yield cam
    # The host's /dev never sees the camera.
    assert not glob.glob("/dev/video*") and not os.path.exists("/dev/v4l")


# -- OpenCV's V4L2 backend ---------------------------------------------------------------------------

def test_opencv_negotiates_mjpg_720p_and_gets_the_cameras_jpeg_bytes(camera: EmulatedUvcCamera) -> None:
    camera.play()
    consumer = Consumer.opencv(camera, reads=20, set=[
        ["CAP_PROP_FOURCC", cv2.VideoWriter.fourcc(*"MJPG")], ["CAP_PROP_FRAME_WIDTH", 1280],
        ["CAP_PROP_FRAME_HEIGHT", 720], ["CAP_PROP_FPS", 30], ["CAP_PROP_BUFFERSIZE", 1],
        ["CAP_PROP_CONVERT_RGB", 0]],
        get=["CAP_PROP_FOURCC", "CAP_PROP_FRAME_WIDTH", "CAP_PROP_FRAME_HEIGHT", "CAP_PROP_FPS", "CAP_PROP_BUFFERSIZE"])
    opened = consumer.next("opened")
    assert all(opened["sets"]), opened
    gets = opened["gets"]
    assert (int(gets["CAP_PROP_FOURCC"]), gets["CAP_PROP_FRAME_WIDTH"], gets["CAP_PROP_FRAME_HEIGHT"],
            gets["CAP_PROP_FPS"], gets["CAP_PROP_BUFFERSIZE"]) == (v4l2.fourcc("MJPG"), 1280, 720, 30, 1)
    assert camera.format == StreamFormat("MJPG", 1280, 720, 30.0, 1280 * 720 * 2)
    assert camera.buffer_count == 1  # BUFFERSIZE 1 reached the driver
    assert camera.owner_pid == consumer.pid

    frames = consumer.frames(20)
    played = {hashlib.sha256(f.data).hexdigest(): f for f in camera.played() if f.sequence is not None}
    got = [played.get(f["sha"]) for f in frames]
    assert all(got), "a frame OpenCV returned is not byte-for-byte one the camera delivered"
    numbers = [f.number for f in got if f is not None]
    sequences = [f.sequence for f in got if f is not None]
    assert numbers == sorted(set(numbers)) and sequences == sorted(set(sequences)), "frames out of order or repeated"


def test_opencv_decodes_frames_in_order_at_720p(camera: EmulatedUvcCamera) -> None:
    camera.play()
    consumer = Consumer.opencv(camera, reads=60, set=[
        ["CAP_PROP_FOURCC", cv2.VideoWriter.fourcc(*"MJPG")], ["CAP_PROP_FRAME_WIDTH", 1280],
        ["CAP_PROP_FRAME_HEIGHT", 720], ["CAP_PROP_BUFFERSIZE", 1]])
    consumer.next("opened")
    start = time.monotonic()
    frames = consumer.frames(60)
    elapsed = time.monotonic() - start
    assert {tuple(f["shape"]) for f in frames} == {(720, 1280, 3)}
    counters = [f["counter"] for f in frames]
    assert all(a < b for a, b in itertools.pairwise(counters)), f"frame numbers not increasing: {counters}"
    print(f"OpenCV V4L2 at 1280x720 MJPG, BUFFERSIZE 1: {60 / elapsed:.1f} fps decoded, "
          f"{camera.frames_dropped} camera frames found no buffer")


def test_opencv_yuyv_at_320x240(camera: EmulatedUvcCamera) -> None:
    camera.play()
    consumer = Consumer.opencv(camera, reads=10, set=[
        ["CAP_PROP_FOURCC", cv2.VideoWriter.fourcc(*"YUYV")], ["CAP_PROP_FRAME_WIDTH", 320],
        ["CAP_PROP_FRAME_HEIGHT", 240]], get=["CAP_PROP_FOURCC", "CAP_PROP_FRAME_WIDTH", "CAP_PROP_FRAME_HEIGHT"])
    gets = consumer.next("opened")["gets"]
    assert (int(gets["CAP_PROP_FOURCC"]), gets["CAP_PROP_FRAME_WIDTH"], gets["CAP_PROP_FRAME_HEIGHT"]) == (
        v4l2.fourcc("YUYV"), 320, 240)
    frames = consumer.frames(10)
    assert {tuple(f["shape"]) for f in frames} == {(240, 320, 3)}
    counters = [f["counter"] for f in frames]
    assert all(a < b for a, b in itertools.pairwise(counters)), counters


@pytest.mark.parametrize(("asked", "granted"), [
    (("MJPG", 320, 240), ("MJPG", 640, 480)),  # MJPG has no 320x240: the nearest MJPG size
    (("YUYV", 1280, 720), ("YUYV", 320, 240)),  # YUYV only at small sizes
    (("H264", 1280, 720), ("YUYV", 320, 240)),  # not offered: OpenCV walks its own list and lands on YUYV
])
def test_opencv_gets_what_the_camera_grants(camera: EmulatedUvcCamera, asked: tuple, granted: tuple) -> None:
    fourcc, width, height = asked
    consumer = Consumer.opencv(camera, reads=0, set=[
        ["CAP_PROP_FOURCC", cv2.VideoWriter.fourcc(*fourcc)], ["CAP_PROP_FRAME_WIDTH", width],
        ["CAP_PROP_FRAME_HEIGHT", height]], get=["CAP_PROP_FOURCC", "CAP_PROP_FRAME_WIDTH", "CAP_PROP_FRAME_HEIGHT"])
    opened = consumer.next("opened")
    assert all(opened["sets"])  # OpenCV's set() says yes to all of it: only reading back tells
    gets = opened["gets"]
    assert (v4l2.fourcc_str(int(gets["CAP_PROP_FOURCC"])), gets["CAP_PROP_FRAME_WIDTH"],
            gets["CAP_PROP_FRAME_HEIGHT"]) == granted
    assert (camera.format.fourcc, camera.format.width, camera.format.height) == granted
    assert consumer.proc.wait(timeout=REPORT_TIMEOUT_S) == 0
    camera.wait_released(timeout=5)


def test_opencv_controls_reach_the_camera(camera: EmulatedUvcCamera) -> None:
    consumer = Consumer.opencv(camera, reads=0, set=[
        ["CAP_PROP_EXPOSURE", 100],  # refused: auto exposure is still on (uvcvideo: EACCES)
        ["CAP_PROP_AUTO_EXPOSURE", 1], ["CAP_PROP_EXPOSURE", 100], ["CAP_PROP_GAIN", 40],
        ["CAP_PROP_AUTO_WB", 0], ["CAP_PROP_WB_TEMPERATURE", 4500],
        ["CAP_PROP_AUTOFOCUS", 0], ["CAP_PROP_FOCUS", 37], ["CAP_PROP_BRIGHTNESS", 300]],
        get=["CAP_PROP_AUTO_EXPOSURE", "CAP_PROP_EXPOSURE", "CAP_PROP_FOCUS", "CAP_PROP_BRIGHTNESS"])
    opened = consumer.next("opened")
    assert opened["sets"] == [False] + [True] * 8
    assert opened["gets"] == {"CAP_PROP_AUTO_EXPOSURE": 1, "CAP_PROP_EXPOSURE": 100, "CAP_PROP_FOCUS": 35,
                              "CAP_PROP_BRIGHTNESS": 255}
    assert consumer.proc.wait(timeout=REPORT_TIMEOUT_S) == 0
    assert camera.controls() == {
        "brightness": 255, "white_balance_automatic": 0, "gain": 40, "white_balance_temperature": 4500,
        "auto_exposure": 1, "exposure_time_absolute": 100, "focus_absolute": 35, "focus_automatic_continuous": 0}
    writes = [(w.key, w.requested, w.applied, w.error) for w in camera.control_writes]
    assert writes == [
        ("exposure_time_absolute", 100, None, "EACCES"), ("auto_exposure", 1, 1, None),
        ("exposure_time_absolute", 100, 100, None), ("gain", 40, 40, None), ("white_balance_automatic", 0, 0, None),
        ("white_balance_temperature", 4500, 4500, None), ("focus_automatic_continuous", 0, 0, None),
        ("focus_absolute", 37, 35, None), ("brightness", 300, 255, None)]  # rounded to the step, clamped
    assert {w.pid for w in camera.control_writes} == {consumer.pid}

    camera.replug()  # a replugged camera comes back with its defaults
    assert camera.controls()["auto_exposure"] == v4l2.EXPOSURE_APERTURE_PRIORITY
    assert camera.controls()["gain"] == 0


def test_two_cameras_in_one_process() -> None:
    with DevNamespace() as ns, EmulatedUvcCamera(ns, serial="Front") as front, \
            EmulatedUvcCamera(ns, serial="Wrist") as wrist:
        assert (front.node_path, wrist.node_path) == ("/dev/video0", "/dev/video2")
        front.play()
        wrist.play()
        consumer = Consumer((front, wrist), [sys.executable, "-c", textwrap.dedent("""
            import json, sys, cv2
            caps = [cv2.VideoCapture(path, cv2.CAP_V4L2) for path in sys.argv[1:]]
            for gain, cap in zip((11, 22), caps):
                cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter.fourcc(*"MJPG"))
                cap.set(cv2.CAP_PROP_GAIN, gain)
            shapes = [[list(cap.read()[1].shape) for _ in range(3)] for cap in caps]
            print(json.dumps({"event": "read", "shapes": shapes}), flush=True)
        """), front.by_id_path, wrist.by_id_path])
        assert consumer.next("read")["shapes"] == [[[480, 640, 3]] * 3] * 2
        assert (front.controls()["gain"], wrist.controls()["gain"]) == (11, 22)
        assert front.owner_pid == wrist.owner_pid == consumer.pid


# -- faults, as OpenCV meets them --------------------------------------------------------------------

def test_stall_times_out_in_select_and_the_stream_resumes(camera: EmulatedUvcCamera) -> None:
    camera.play()
    consumer = Consumer.opencv(camera, env={"OPENCV_VIDEOIO_V4L_SELECT_TIMEOUT": "1"})
    consumer.next("opened")
    consumer.frames(3)
    camera.stall()
    failed = consumer.next("read_failed", timeout=10)
    assert 0.9 <= failed["took"] <= 5.0, failed  # it waited in select() for the 1 s it was given
    camera.resume()
    frame = consumer.next("frame")  # no reopen needed: the V4L2 stream survives a select() timeout
    assert frame["counter"] is not None


def test_hung_dqbuf_only_sigkill_ends_the_process(camera: EmulatedUvcCamera) -> None:
    camera.play()
    consumer = Consumer.opencv(camera)
    consumer.next("opened")
    consumer.frames(3)
    camera.hang_dqbuf()
    assert consumer.quiet_for(1.0), "reads went on after DQBUF hung"
    consumer.proc.send_signal(signal.SIGINT)  # Python's handler never gets to run inside the call
    with pytest.raises(subprocess.TimeoutExpired):
        consumer.proc.wait(timeout=1.0)
    assert camera.owner_pid == consumer.pid  # a wedged process still holds the camera
    consumer.proc.kill()
    assert consumer.proc.wait(timeout=5) == -signal.SIGKILL
    camera.wait_released(timeout=5)

    successor = Consumer.opencv(camera)  # the hang was one DQBUF: the next owner streams
    successor.next("opened")
    assert len(successor.frames(3)) == 3


def test_unplug_fails_the_read_and_replug_under_another_node(camera: EmulatedUvcCamera) -> None:
    camera.play()
    consumer = Consumer.opencv(camera, reopen=True)
    assert consumer.next("opened")["node"] == "/dev/video0"
    consumer.frames(3)
    unplugged = time.monotonic()
    camera.unplug()
    failed = consumer.next("read_failed", timeout=5)
    assert failed["took"] < 2.0, failed  # select() woke on the hang-up, DQBUF said ENODEV
    print(f"unplug -> read() False after {time.monotonic() - unplugged:.3f} s")
    assert not [n for n in camera.namespace.listdir() if n.startswith("video")]
    assert camera.namespace.listdir("v4l/by-id") == []

    camera.replug(node=2)  # the same camera, enumerated as another node behind the same by-id link
    assert consumer.next("opened")["node"] == "/dev/video2"
    assert len(consumer.frames(3)) == 3


def test_replug_while_the_old_node_is_held_gets_another_node(camera: EmulatedUvcCamera) -> None:
    holder = Consumer(camera, [sys.executable, "-c", textwrap.dedent("""
        import os, time
        fd = os.open("/dev/video0", os.O_RDWR)
        print('{"event": "held"}', flush=True)
        time.sleep(60)
    """)])
    holder.next("held")
    camera.unplug()
    assert camera.replug() == "/dev/video2"  # video0 stays taken until its last file closes
    assert os.path.basename(os.readlink(f"/proc/{holder.pid}/root{camera.by_id_path}")) == "video2"
    fd_links = {os.readlink(f"/proc/{holder.pid}/fd/{fd}") for fd in os.listdir(f"/proc/{holder.pid}/fd")}
    assert "/dev/video0 (deleted)" in fd_links  # what /proc shows for an unplugged camera still held
    holder.proc.kill()
    holder.proc.wait(timeout=5)
    camera.wait_closed(5)
    camera.unplug()
    assert camera.replug() == "/dev/video0"


def test_a_second_opener_is_refused_until_the_owner_is_gone(camera: EmulatedUvcCamera) -> None:
    camera.play()
    owner = Consumer.opencv(camera)
    owner.next("opened")
    owner.frames(2)
    second = Consumer.opencv(camera, reopen=True, reads=3)
    second.next("open_failed")  # uvcvideo: S_FMT answers EBUSY, OpenCV gives up the open
    assert camera.owner_pid == owner.pid
    holders = [int(pid) for pid in os.listdir("/proc") if pid.isdigit() and camera.node_path in _fds(int(pid))]
    assert owner.pid in holders  # /proc tells who holds the camera, as for a real one

    owner.proc.kill()
    owner.proc.wait(timeout=5)
    assert second.next("opened", timeout=5)  # free as soon as the owner is gone
    assert len(second.frames(3)) == 3


def _fds(pid: int) -> list[str]:
    with contextlib.suppress(OSError):
        return [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
    return []


def test_corrupt_truncated_and_padded_jpegs_reach_opencv_as_sent(camera: EmulatedUvcCamera) -> None:
    draw = synthetic_source()
    fmt = StreamFormat("MJPG", 640, 480, 30.0, 0)
    good = [draw(n, fmt) for n in range(1, 4)]
    garbage = bytes(np.random.default_rng(1).integers(0, 256, 20_000, dtype=np.uint8))
    truncated = good[1][: len(good[1]) // 2]
    padded = good[2] + bytes(512)  # zero fill after the EOI marker, as UVC payloads can carry
    frames = [good[0], garbage, truncated, padded]

    mjpg = ["CAP_PROP_FOURCC", cv2.VideoWriter.fourcc(*"MJPG")]  # OpenCV alone would pick YUYV
    raw = Consumer.opencv(camera, set=[mjpg, ["CAP_PROP_CONVERT_RGB", 0]])
    raw.next("opened")
    assert [f["sha"] for f in _deliver(camera, raw, frames)] == [hashlib.sha256(f).hexdigest() for f in frames]
    raw.proc.kill()
    raw.proc.wait(timeout=5)
    camera.wait_released(timeout=5)

    # Decoding in OpenCV hides a broken frame: read() is True and returns the previous frame's pixels.
    decoded = Consumer.opencv(camera, set=[mjpg])
    decoded.next("opened")
    assert [f["counter"] for f in _deliver(camera, decoded, [good[0], garbage, padded])] == [1, 1, 3]


def _deliver(camera: EmulatedUvcCamera, consumer: Consumer, frames: list[bytes]) -> list[dict[str, Any]]:
    """Send `frames` one at a time, each once OpenCV has read the one before."""
    camera.wait_streaming(timeout=REPORT_TIMEOUT_S)
    assert camera.send_jpeg(frames[0]) is not None  # OpenCV skips the first frame after STREAMON
    got = []
    for data in frames:
        camera.wait_until(lambda: camera.buffers_queued > 0, REPORT_TIMEOUT_S, "queued buffer")
        assert camera.send_jpeg(data) is not None
        got.append(consumer.next("frame"))
    return got


def test_camera_node_inside_the_namespace_publishes_the_cameras_jpeg_bytes(
        camera: EmulatedUvcCamera, probe: Any, tmp_path: Any) -> None:
    """ROS 2 across the namespace's edge: DDS shared memory needs the host's own /dev/shm inside."""
    compressed = probe.subscribe(CompressedImage, "/image_raw/compressed")
    camera.play()
    with (tmp_path / "camera_node.log").open("w") as log:
        node = camera.popen([sys.executable, "-m", "cam_guard.camera_node", "--ros-args",
                             "-p", f"device:={camera.by_id_path}"], stdout=log, stderr=subprocess.STDOUT)
        try:
            messages = compressed.wait_count(10, REPORT_TIMEOUT_S)
        finally:
            node.send_signal(signal.SIGINT)
            node.wait(timeout=10)
    played = {f.data for f in camera.played() if f.sequence is not None}
    assert all(bytes(m.data) in played for m in messages), "image_raw/compressed is not the camera's JPEG"


# -- a raw V4L2 client: every ioctl with its request sign-extended, as ustreamer passes it ------------

RAW_CLIENT = textwrap.dedent("""
    import ctypes, errno, hashlib, json, mmap, os, sys
    from cam_guard.testing.uvc import v4l2

    libc = ctypes.CDLL(None, use_errno=True)
    libc.ioctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p]

    def xioctl(fd, request, arg):
        wide = ctypes.c_int32(request).value & 0xFFFFFFFFFFFFFFFF  # through an int: sign-extended
        return ctypes.get_errno() if libc.ioctl(fd, wide, ctypes.byref(arg)) < 0 else 0

    class ExtControl(ctypes.Structure):
        _pack_ = 1
        _fields_ = [("id", ctypes.c_uint32), ("size", ctypes.c_uint32), ("reserved2", ctypes.c_uint32),
                    ("value", ctypes.c_int64)]

    class ExtControls(ctypes.Structure):
        _fields_ = [("which", ctypes.c_uint32), ("count", ctypes.c_uint32), ("error_idx", ctypes.c_uint32),
                    ("request_fd", ctypes.c_int32), ("reserved", ctypes.c_uint32),
                    ("controls", ctypes.POINTER(ExtControl))]

    def ext(request, pairs):
        array = (ExtControl * len(pairs))(*[ExtControl(id=cid, value=value) for cid, value in pairs])
        ctrls = ExtControls(count=len(pairs), controls=array)
        return [errno.errorcode.get(xioctl(fd, request, ctrls), "OK"), ctrls.error_idx, [a.value for a in array]]

    fd = os.open(sys.argv[1], os.O_RDWR)  # blocking: DQBUF sleeps until a frame comes
    report = {"event": "ready"}
    cap = v4l2.Capability()
    assert xioctl(fd, v4l2.VIDIOC_QUERYCAP, cap) == 0
    report["cap"] = [cap.driver.decode(), cap.card.decode(), cap.device_caps]
    modes = report["modes"] = []
    desc = v4l2.FmtDesc(index=0, type=v4l2.BUF_TYPE_VIDEO_CAPTURE)
    while xioctl(fd, v4l2.VIDIOC_ENUM_FMT, desc) == 0:
        size = v4l2.FrmSizeEnum(index=0, pixel_format=desc.pixelformat)
        while xioctl(fd, v4l2.VIDIOC_ENUM_FRAMESIZES, size) == 0:
            w, h = size.discrete.width, size.discrete.height
            ival = v4l2.FrmIvalEnum(index=0, pixel_format=desc.pixelformat, width=w, height=h)
            fps = []
            while xioctl(fd, v4l2.VIDIOC_ENUM_FRAMEINTERVALS, ival) == 0:
                fps.append(ival.discrete.denominator // ival.discrete.numerator)
                ival.index += 1
            modes.append([v4l2.fourcc_str(desc.pixelformat), w, h, fps])
            size.index += 1
        desc.index += 1
    controls = report["controls"] = []
    query = v4l2.QueryCtrl(id=v4l2.CTRL_FLAG_NEXT_CTRL)
    while xioctl(fd, v4l2.VIDIOC_QUERYCTRL, query) == 0:
        menu = {}
        for index in range(query.minimum, query.maximum + 1) if query.type == v4l2.CTRL_TYPE_MENU else ():
            item = v4l2.QueryMenu(id=query.id, index=index)
            if xioctl(fd, v4l2.VIDIOC_QUERYMENU, item) == 0:
                menu[index] = item.name.decode()
        controls.append([query.id, query.name.decode(), query.minimum, query.maximum, query.step,
                         query.default_value, bool(query.flags & v4l2.CTRL_FLAG_INACTIVE), menu])
        query = v4l2.QueryCtrl(id=query.id | v4l2.CTRL_FLAG_NEXT_CTRL)
    report["ext"] = [
        ext(v4l2.VIDIOC_S_EXT_CTRLS, [(v4l2.CID_EXPOSURE_ABSOLUTE, 500), (v4l2.CID_EXPOSURE_AUTO, 1)]),
        ext(v4l2.VIDIOC_TRY_EXT_CTRLS, [(v4l2.CID_WHITE_BALANCE_TEMPERATURE, 5000)]),
        ext(v4l2.VIDIOC_S_EXT_CTRLS, [(v4l2.CID_GAIN, 10), (0x00980999, 1)]),
        ext(v4l2.VIDIOC_G_EXT_CTRLS, [(v4l2.CID_EXPOSURE_ABSOLUTE, 0), (v4l2.CID_GAIN, 0)]),
    ]
    try:
        os.read(fd, 1)
    except OSError as e:
        report["read"] = errno.errorcode[e.errno]
    fmt = v4l2.Format(type=v4l2.BUF_TYPE_VIDEO_CAPTURE)
    fmt.fmt.pix.width, fmt.fmt.pix.height, fmt.fmt.pix.pixelformat = 1280, 720, v4l2.fourcc("MJPG")
    assert xioctl(fd, v4l2.VIDIOC_S_FMT, fmt) == 0
    req = v4l2.RequestBuffers(count=2, type=v4l2.BUF_TYPE_VIDEO_CAPTURE, memory=v4l2.MEMORY_MMAP)
    assert xioctl(fd, v4l2.VIDIOC_REQBUFS, req) == 0
    maps = []
    for index in range(req.count):
        buf = v4l2.Buffer(index=index, type=v4l2.BUF_TYPE_VIDEO_CAPTURE, memory=v4l2.MEMORY_MMAP)
        assert xioctl(fd, v4l2.VIDIOC_QUERYBUF, buf) == 0
        maps.append(mmap.mmap(fd, buf.length, mmap.MAP_SHARED, mmap.PROT_READ, offset=buf.m.offset))
        assert xioctl(fd, v4l2.VIDIOC_QBUF, buf) == 0
    assert xioctl(fd, v4l2.VIDIOC_STREAMON, ctypes.c_int(v4l2.BUF_TYPE_VIDEO_CAPTURE)) == 0
    print(json.dumps(report), flush=True)
    buf = v4l2.Buffer(type=v4l2.BUF_TYPE_VIDEO_CAPTURE, memory=v4l2.MEMORY_MMAP)
    assert xioctl(fd, v4l2.VIDIOC_DQBUF, buf) == 0
    data = maps[buf.index][:buf.bytesused]
    print(json.dumps({"event": "frame", "sha": hashlib.sha256(data).hexdigest(), "sequence": buf.sequence,
                      "done": bool(buf.flags & v4l2.BUF_FLAG_DONE)}), flush=True)
    assert xioctl(fd, v4l2.VIDIOC_STREAMOFF, ctypes.c_int(v4l2.BUF_TYPE_VIDEO_CAPTURE)) == 0
    for m in maps:
        m.close()
    assert xioctl(fd, v4l2.VIDIOC_REQBUFS, v4l2.RequestBuffers(type=v4l2.BUF_TYPE_VIDEO_CAPTURE,
                                                               memory=v4l2.MEMORY_MMAP)) == 0
    os.close(fd)
""")


def test_raw_v4l2_client_sees_a_uvc_camera(camera: EmulatedUvcCamera) -> None:
    client = Consumer(camera, [sys.executable, "-c", RAW_CLIENT, camera.node_path or ""])
    report = client.next("ready")
    assert report["cap"] == ["uvcvideo", "cam_guard Emulated UVC",
                             v4l2.CAP_VIDEO_CAPTURE | v4l2.CAP_STREAMING | v4l2.CAP_EXT_PIX_FORMAT]
    assert report["modes"] == [[m.fourcc, m.width, m.height, list(m.fps)] for m in DEFAULT_MODES]
    specs = sorted(DEFAULT_CONTROLS, key=lambda c: c.cid)  # NEXT_CTRL walks the ids upwards
    assert [c[:6] for c in report["controls"]] == [[c.cid, c.title, c.minimum, c.maximum, c.step, c.default]
                                                   for c in specs]
    inactive = {c[1] for c in report["controls"] if c[6]}
    assert inactive == {"White Balance Temperature", "Exposure Time, Absolute", "Focus, Absolute"}
    assert [c[7] for c in report["controls"] if c[7]] == [{"1": "Manual Mode", "3": "Aperture Priority Mode"}]
    assert report["ext"] == [
        ["OK", 0, [500, 1]],  # manual exposure in the same call as the manual mode: accepted
        ["EACCES", 0, [5000]],  # white balance temperature while automatic white balance is on
        ["EINVAL", 1, [10, 1]],  # an unknown control: nothing is set
        ["OK", 0, [500, 0]],
    ]
    assert report["read"] == "EINVAL"  # streaming I/O only
    camera.wait_streaming(timeout=REPORT_TIMEOUT_S)
    jpeg = synthetic_source()(7, camera.format)
    assert camera.send_jpeg(jpeg) == 0
    assert client.next("frame") == {"event": "frame", "sha": hashlib.sha256(jpeg).hexdigest(), "sequence": 0,
                                    "done": True}
    assert client.proc.wait(timeout=REPORT_TIMEOUT_S) == 0
    camera.wait_released(timeout=5)


# -- a third-party V4L2 program ------------------------------------------------------------------------

def test_ustreamer_streams_the_emulated_camera(camera: EmulatedUvcCamera, tmp_path: Any) -> None:
    if shutil.which("ustreamer") is None:
        pytest.skip("ustreamer is not installed (apt-get install ustreamer)")
    camera.play()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = (tmp_path / "ustreamer.log").open("w")
    proc = camera.popen(["ustreamer", f"--device={camera.by_id_path}", "--format=MJPEG", "--resolution=1280x720",
                         "--desired-fps=30", "--encoder=HW", "--host=127.0.0.1", f"--port={port}"],
                        stdout=log, stderr=subprocess.STDOUT)
    try:
        camera.wait_streaming(timeout=REPORT_TIMEOUT_S)
        assert camera.owner_pid == proc.pid
        jpegs = _mjpeg_stream(port, seconds=2.0)
        state = json.loads(_http_get(port, "/state"))["result"]["source"]
    finally:
        proc.kill()
        proc.wait(timeout=5)
        log.close()
    played = {f.data: f for f in camera.played() if f.sequence is not None}
    from_camera = [played[j] for j in jpegs if j in played]  # ustreamer also serves its own blank picture
    assert len(from_camera) >= 10, (tmp_path / "ustreamer.log").read_text()[-2000:]
    assert all(a.number < b.number for a, b in itertools.pairwise(from_camera)), "ustreamer reordered frames"
    assert (state["resolution"]["width"], state["resolution"]["height"]) == (1280, 720)
    print(f"ustreamer: {len(from_camera)} camera frames in 2 s on /stream, captured_fps={state['captured_fps']}")


def _http_get(port: int, path: str) -> bytes:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        return conn.getresponse().read()
    finally:
        conn.close()


def _mjpeg_stream(port: int, seconds: float) -> list[bytes]:
    """The JPEG parts of ustreamer's multipart /stream during `seconds`."""
    deadline = time.monotonic() + REPORT_TIMEOUT_S
    while True:  # the HTTP server comes up beside the capture loop
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/stream")
            response = conn.getresponse()
            break
        except ConnectionRefusedError:
            assert time.monotonic() < deadline, "ustreamer's HTTP server never came up"
            time.sleep(0.05)
    assert response.status == 200
    parts: list[bytes] = []
    length = None
    end = time.monotonic() + seconds
    try:
        while time.monotonic() < end:
            line = response.fp.readline()
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
            elif line == b"\r\n" and length is not None:
                parts.append(response.fp.read(length))
                length = None
    finally:
        conn.close()
    return parts


# -- the device model on its own ---------------------------------------------------------------------

@pytest.fixture
def device(tmp_path: Any) -> Iterator[UvcDevice]:
    os.mkfifo(tmp_path / "video0")
    fd = os.open(tmp_path / "video0", os.O_RDWR | os.O_NONBLOCK)
    node = Node(0, "capture", fd)
    yield UvcDevice([node], card="test")
    node.close()


def _handle(device: UvcDevice, pid: int = 1) -> Handle:
    handle = Handle(pid, device.nodes[0], lambda: True)
    device.open(handle)
    return handle


def _s_fmt(device: UvcDevice, handle: Handle, fourcc: str, width: int, height: int) -> tuple[int, str, int, int]:
    fmt = v4l2.Format(type=v4l2.BUF_TYPE_VIDEO_CAPTURE)
    fmt.fmt.pix.pixelformat, fmt.fmt.pix.width, fmt.fmt.pix.height = v4l2.fourcc(fourcc), width, height
    reply = device.ioctl(handle, v4l2.VIDIOC_S_FMT, bytes(fmt))
    pix = v4l2.Format.from_buffer_copy(reply.data).fmt.pix
    return reply.result, v4l2.fourcc_str(pix.pixelformat), pix.width, pix.height


def test_device_negotiates_formats_and_rates_like_uvcvideo(device: UvcDevice) -> None:
    handle = _handle(device)
    assert _s_fmt(device, handle, "MJPG", 1920, 1080) == (0, "MJPG", 1280, 720)
    assert _s_fmt(device, handle, "YUYV", 640, 480) == (0, "YUYV", 320, 240)
    assert _s_fmt(device, handle, "BGR3", 640, 480) == (0, "MJPG", 640, 480)  # the default format
    for asked, granted in ((25, 30), (10, 15), (60, 30)):
        parm = v4l2.StreamParm(type=v4l2.BUF_TYPE_VIDEO_CAPTURE)
        parm.parm.capture.timeperframe.numerator, parm.parm.capture.timeperframe.denominator = 1, asked
        reply = device.ioctl(handle, v4l2.VIDIOC_S_PARM, bytes(parm))
        assert v4l2.StreamParm.from_buffer_copy(reply.data).parm.capture.timeperframe.denominator == granted
    assert device.ioctl(handle, 0xC0045699, bytes(4)).result == -errno.ENOTTY  # not a call UVC answers


def test_device_has_one_owner_and_drops_frames_without_buffers(device: UvcDevice) -> None:
    owner, other = _handle(device, 1), _handle(device, 2)
    assert _s_fmt(device, owner, "MJPG", 640, 480)[0] == 0
    assert _s_fmt(device, other, "MJPG", 640, 480)[0] == -errno.EBUSY
    req = v4l2.RequestBuffers(count=1, type=v4l2.BUF_TYPE_VIDEO_CAPTURE, memory=v4l2.MEMORY_MMAP)
    assert device.ioctl(owner, v4l2.VIDIOC_REQBUFS, bytes(req)).aux == 640 * 480 * 2
    buf = bytes(v4l2.Buffer(index=0, type=v4l2.BUF_TYPE_VIDEO_CAPTURE, memory=v4l2.MEMORY_MMAP))
    assert device.ioctl(other, v4l2.VIDIOC_QBUF, buf).result == -errno.EBUSY
    assert device.ioctl(owner, v4l2.VIDIOC_QBUF, buf).result == 0
    assert device.ioctl(owner, v4l2.VIDIOC_STREAMON, bytes(ctypes.c_int(v4l2.BUF_TYPE_VIDEO_CAPTURE))).result == 0
    assert device.capture(b"first") == 0
    assert device.capture(b"second") is None  # the only buffer is full: dropped, but counted
    reply = device.ioctl(owner, v4l2.VIDIOC_DQBUF, buf)
    assert (reply.result, reply.payload, v4l2.Buffer.from_buffer_copy(reply.data).sequence) == (0, b"first", 0)
    assert device.ioctl(owner, v4l2.VIDIOC_DQBUF, buf).result == -errno.EAGAIN
    assert device.ioctl(owner, v4l2.VIDIOC_QBUF, buf).result == 0
    assert device.capture(b"third") == 2
    device.close(owner)
    assert device.owner is None and _s_fmt(device, other, "MJPG", 640, 480)[0] == 0
    device.unplug()
    assert device.ioctl(other, v4l2.VIDIOC_QUERYCAP, bytes(v4l2.Capability())).result == -errno.ENODEV


def test_device_validates_controls_like_uvcvideo(device: UvcDevice) -> None:
    handle = _handle(device)

    def s_ctrl(cid: int, value: int) -> tuple[int, int]:
        reply = device.ioctl(handle, v4l2.VIDIOC_S_CTRL, bytes(v4l2.Control(id=cid, value=value)))
        return reply.result, v4l2.Control.from_buffer_copy(reply.data).value

    assert s_ctrl(v4l2.CID_EXPOSURE_AUTO, 4) == (-errno.ERANGE, 4)
    assert s_ctrl(v4l2.CID_EXPOSURE_AUTO, 0) == (-errno.EINVAL, 0)  # in range, not offered (no full auto)
    assert s_ctrl(v4l2.CID_FOCUS_ABSOLUTE, 12) == (-errno.EACCES, 12)  # autofocus is on
    assert s_ctrl(v4l2.CID_FOCUS_AUTO, 5) == (0, 1)  # booleans clamp
    assert s_ctrl(v4l2.CID_FOCUS_AUTO, 0) == (0, 0)
    assert s_ctrl(v4l2.CID_FOCUS_ABSOLUTE, 12) == (0, 10)  # step 5
    assert s_ctrl(v4l2.CID_GAIN, -7) == (0, 0)
    assert s_ctrl(0x00980999, 1) == (-errno.EINVAL, 1)
    assert [(w.key, w.applied, w.error) for w in device.log] == [
        ("auto_exposure", None, "ERANGE"), ("auto_exposure", None, "EINVAL"), ("focus_absolute", None, "EACCES"),
        ("focus_automatic_continuous", 1, None), ("focus_automatic_continuous", 0, None),
        ("focus_absolute", 10, None), ("gain", 0, None)]

