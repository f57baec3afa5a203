"""LeRobot's camera on a USB camera (issue 14): the emulated UVC camera feeds a real camera_node process, and a
`cam_guard` camera made by LeRobot's own factory reads it, as a trainer would. Each frame carries the number the
camera drew into it: the test knows which of the camera's frames LeRobot returned, and that they are its pixels.
Root, as the other emulated-camera tests (a private /dev); CI runs as root.
"""

import contextlib
import itertools
import time
from collections.abc import Iterator

import draccus
import numpy as np
import pytest
from helpers import UVC_FAULTS, needs_uvc_emulator, start_uvc_camera
from lerobot.cameras.camera import Camera
from lerobot.cameras.configs import CameraConfig
from lerobot.cameras.utils import make_cameras_from_configs
from lerobot.utils.import_utils import register_third_party_plugins

from cam_guard.capture.jpeg import decode_jpeg
from cam_guard.capture.synthetic import read_frame_counter
from cam_guard.testing.harness import CAMERA_DOWN, CameraUnderTest, RosProbe
from cam_guard.testing.uvc.camera import EmulatedUvcCamera, synthetic_source

pytestmark = needs_uvc_emulator

READ_TIMEOUT_S = 1.0  # CamGuardCameraConfig.timeout_ms's default: read() returns no frame older than this
# A frame is stamped when the capture worker takes it from the driver, a little after the camera sent it.
STAMP_SLACK_S = 0.5
RED = 128  # a coloured picture: the frames' RGB order shows
RECOVER_WAIT_S = 10.0  # a bound against hangs; the node's recovery time is asserted in test_camera_uvc.py


@contextlib.contextmanager
def camera_node(probe: RosProbe, uvc: EmulatedUvcCamera, **params: object) -> Iterator[CameraUnderTest]:
    camera = start_uvc_camera(probe, uvc, **params)
    try:
        yield camera
        assert camera.node.stop()[0] == 0, camera.node.output()[-3000:]  # Ctrl-C, as a user stops it
    finally:
        camera.node.__exit__(None, None, None)


@contextlib.contextmanager
def lerobot_camera(width: int, height: int, transport: str = "raw") -> Iterator[Camera]:
    """A cam_guard camera as a robot config holds it (--robot.cameras), made and connected as LeRobot does."""
    register_third_party_plugins()  # as lerobot-record does: the plugin is found by its distribution's name
    configs = draccus.decode(dict[str, CameraConfig], {"front": {
        "type": "cam_guard", "topic": "/image_raw", "transport": transport, "width": width, "height": height,
        "fps": 30, "connect_timeout_ms": 30000}})
    camera = make_cameras_from_configs(configs)["front"]
    camera.connect()
    try:
        yield camera
    finally:
        camera.disconnect()


def camera_frame_numbers(frames: list[np.ndarray], uvc: EmulatedUvcCamera) -> list[int]:
    """The number the camera drew into each frame, once each frame is checked to be that JPEG of the camera's,
    decoded, in RGB."""
    sent = {f.number: f.data for f in uvc.played() if f.sequence is not None}
    numbers = [read_frame_counter(frame) for frame in frames]
    for number, frame in zip(numbers, frames, strict=True):
        assert number in sent, f"frame {number} is not one the camera delivered"
        assert np.array_equal(frame, decode_jpeg(sent[number])[..., ::-1]), f"frame {number}: not the camera's RGB"
    return numbers


def assert_each_new_and_in_order(numbers: list[int]) -> None:
    assert all(a < b for a, b in itertools.pairwise(numbers)), f"a frame returned twice or out of order: {numbers}"


@pytest.mark.parametrize("transport", ["raw", "compressed"])
def test_lerobot_reads_the_cameras_mjpg_frames_at_the_size_asked(probe, uvc, transport):
    uvc.play(synthetic_source(red=RED))
    with camera_node(probe, uvc, width=1280, height=720), lerobot_camera(1280, 720, transport) as camera:
        frames = [camera.read() for _ in range(10)]
        fmt = uvc.format
    assert (fmt.fourcc, fmt.width, fmt.height) == ("MJPG", 1280, 720)
    assert all(frame.shape == (720, 1280, 3) and frame.dtype == np.uint8 for frame in frames)
    assert_each_new_and_in_order(camera_frame_numbers(frames, uvc))


def wait_unread_frame(camera: Camera, node: CameraUnderTest, read_last: int) -> None:
    """Until the newest frame is one `camera` has not returned yet (peeked at, not consumed)."""
    while read_frame_counter(camera.read_latest()) <= read_last:
        node.images.wait_count(len(node.images.items) + 1, timeout=10)


def first_frame(camera: Camera, timeout_s: float) -> np.ndarray:
    """What read() returns first, through the TimeoutErrors it raises while the camera is away."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return camera.read()
        except TimeoutError:
            if time.monotonic() > deadline:
                raise


def assert_error_says(camera: Camera, reason: str, timeout_s: float = 5.0) -> None:
    message = ""
    deadline = time.monotonic() + timeout_s
    while reason not in message and time.monotonic() < deadline:
        try:
            camera.read_latest(max_age_ms=500)  # peeks; consumes nothing
        except TimeoutError as exc:
            message = str(exc)
        time.sleep(0.05)
    assert reason in message, message


@pytest.mark.parametrize("fault", ["no frames", "unplug, back as another node"])
def test_lerobot_gets_no_stale_frame_during_a_fault_and_the_cameras_new_frames_after_it(probe, uvc, fault):
    inject, restore = UVC_FAULTS[fault]
    assert restore is not None, "both faults end when the camera is back"
    uvc.play(synthetic_source(red=RED))
    with camera_node(probe, uvc) as node, lerobot_camera(640, 480) as camera:
        before = [camera.read() for _ in range(5)]
        # The trainer is busy while the camera fails: a frame it has not read waits in the ring.
        wait_unread_frame(camera, node, read_frame_counter(before[-1]))
        t_fault = time.time()
        inject(uvc)
        node.state_change_after(t_fault, CAMERA_DOWN, timeout=10)
        # The fault lasts until that frame is older than read() accepts (time itself is the condition here).
        time.sleep(max(0.0, t_fault + READ_TIMEOUT_S + STAMP_SLACK_S - time.time()))
        in_fault = r"\(last reported camera state RECONNECTING, STALLED \d+\.\d s ago(: .*)?\)"
        with pytest.raises(TimeoutError, match=f"no new frame within {READ_TIMEOUT_S * 1000:.0f} ms " + in_fault):
            camera.read()
        with pytest.raises(TimeoutError, match=r"newest frame on /image_raw is \d+ ms old, max 500 ms " + in_fault):
            camera.read_latest(max_age_ms=500)
        if fault.startswith("unplug"):  # why, in the camera's words, from its diagnostics (within a second)
            assert_error_says(camera, f"gone: {uvc.by_id_path} does not exist (unplugged?)")
        last_before = max(f.number for f in uvc.played())
        restore(uvc)
        after = [first_frame(camera, RECOVER_WAIT_S)] + [camera.read() for _ in range(5)]
        node_running, node_path = node.node.proc.poll() is None, uvc.node_path
        assert camera.is_connected
    numbers = camera_frame_numbers(before + after, uvc)
    assert_each_new_and_in_order(numbers)
    assert min(numbers[len(before):]) > last_before, "every frame after the fault was sent after it"
    assert node_running, "recovered without restarting the node"
    if fault.endswith("another node"):
        assert node_path == "/dev/video4"
