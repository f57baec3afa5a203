"""Two cam_guard cameras in one LeRobot robot config, read side by side, against the real lerobot package."""

import time

import draccus
from helpers import NodeProcess
from lerobot.cameras.configs import CameraConfig
from lerobot.cameras.utils import make_cameras_from_configs
from lerobot_camera_cam_guard import CamGuardCamera

from cam_guard.capture.synthetic import read_frame_counter

# What a robot's `cameras` field holds, as --robot.cameras='{front: {...}, wrist: {...}}' gives it.
ROBOT_CAMERAS = {
    "front": {"type": "cam_guard", "topic": "/front/image_raw", "width": 320, "height": 240, "fps": 30,
              "connect_timeout_ms": 30000},
    "wrist": {"type": "cam_guard", "topic": "/wrist/image_raw", "width": 256, "height": 192, "fps": 30,
              "connect_timeout_ms": 30000},
}


def test_front_and_wrist_of_one_robot_config_read_side_by_side(ros):
    configs = draccus.decode(dict[str, CameraConfig], ROBOT_CAMERAS)
    assert configs["wrist"].state_topic == "/wrist/camera_state", "each camera's state comes from beside its topic"
    cameras = make_cameras_from_configs(configs)
    assert all(isinstance(c, CamGuardCamera) for c in cameras.values())
    graph = NodeProcess("cam_guard.tools.graph_launcher", env={"DISPLAY": ""},
                        args=["--cameras", "front,wrist", "--devices", "synthetic,synthetic",
                              "--set", "front.width=320", "--set", "front.height=240",
                              "--set", "wrist.width=256", "--set", "wrist.height=192"])
    try:
        for camera in cameras.values():
            camera.connect()
        counters: dict[str, list[int]] = {"front": [], "wrist": []}
        for _ in range(30):  # one robot step reads every camera
            for name, camera in cameras.items():
                frame = camera.async_read(timeout_ms=2000)
                assert frame.shape == (ROBOT_CAMERAS[name]["height"], ROBOT_CAMERAS[name]["width"], 3)
                counters[name].append(read_frame_counter(frame))
        for name, seen in counters.items():
            assert seen == sorted(set(seen)), f"{name}: each read a new frame of that camera, in order"
        graph.stop(timeout=15)
        deadline, message = time.monotonic() + 30, ""
        while "STOPPED" not in message and "NO_PUBLISHER" not in message:  # the wrist's own last word
            assert time.monotonic() < deadline, f"the wrist camera's errors never named its state: {message}"
            try:
                cameras["wrist"].async_read(timeout_ms=500)
            except TimeoutError as exc:
                message = str(exc)
        assert "/wrist/image_raw" in message
    finally:
        for camera in cameras.values():
            if camera.is_connected:
                camera.disconnect()
        graph.__exit__(None, None, None)
