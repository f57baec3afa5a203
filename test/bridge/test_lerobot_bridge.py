"""The LeRobot plugin against the real lerobot package and real camera/reward node processes."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import gymnasium as gym
import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from helpers import NodeProcess
from lerobot.cameras.configs import CameraConfig, ColorMode
from lerobot.cameras.utils import make_cameras_from_configs
from lerobot.teleoperators.utils import TeleopEvents
from lerobot.utils.errors import DeviceNotConnectedError
from lerobot_camera_cam_guard import CamGuardCamera, CamGuardCameraConfig, RewardReading, RewardSource
from lerobot_camera_cam_guard.gym_wrapper import CamGuardRewardWrapper
from lerobot_camera_cam_guard.reward_teleop import NO_EVENTS, merge_events

from cam_guard.bridge.helper import camera_reason, follow_state, with_reason
from cam_guard.capture.synthetic import read_frame_counter
from cam_guard.common.frame_ring import Status
from cam_guard.testing.fault_injection import MjpegFaultServer

CAMERA = {"device": "synthetic", "width": 320, "height": 240}


def run_python(code: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=timeout)


def test_plugin_is_discovered_by_lerobot_without_loading_rclpy():
    result = run_python("""
        import sys
        from lerobot.utils.import_utils import register_third_party_plugins
        from lerobot.cameras.configs import CameraConfig
        from lerobot.configs.parser import load_plugin
        register_third_party_plugins()
        load_plugin("lerobot_camera_cam_guard")  # what --env.discover_packages_path does: every submodule
        assert "cam_guard" in CameraConfig.get_known_choices(), CameraConfig.get_known_choices()
        assert "rclpy" not in sys.modules, "the plugin must not import rclpy"
        assert "cv2" not in sys.modules
        import threading
        assert threading.active_count() == 1, threading.enumerate()
        print("ok")
    """)
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stderr[-3000:]


def test_an_unsupported_lerobot_is_one_line_naming_the_fix(tmp_path):
    """What `pip install torch==2.13.0 lerobot` gives: 0.3.2, laid out as 0.3.2 is where the plugin looks."""
    for module in ("__init__", "cameras/__init__", "cameras/camera", "utils/__init__", "utils/import_utils"):
        (tmp_path / "lerobot" / f"{module}.py").parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "lerobot" / f"{module}.py").write_text("")
    metadata = tmp_path / "lerobot-0.3.2.dist-info" / "METADATA"
    metadata.parent.mkdir()
    metadata.write_text("Metadata-Version: 2.1\nName: lerobot\nVersion: 0.3.2\n")
    result = subprocess.run([sys.executable, "-c", "import lerobot_camera_cam_guard"], capture_output=True, text=True,
                            timeout=60, env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == (
        "ImportError: lerobot_camera_cam_guard needs lerobot 0.4.4 (Python >= 3.10), but lerobot 0.3.2 is installed "
        "and lacks lerobot.utils.errors, lerobot.rl: pip install 'lerobot[transformers-dep]==0.4.4'")


def test_config_parses_through_draccus_and_makes_the_camera():
    import draccus

    config = draccus.decode(CameraConfig, {"type": "cam_guard", "topic": "/wrist/image_raw", "width": 320,
                                           "height": 240, "fps": 15, "color_mode": "bgr"})
    assert isinstance(config, CamGuardCameraConfig)
    assert (config.topic, config.width, config.fps, config.color_mode) == ("/wrist/image_raw", 320, 15, ColorMode.BGR)
    assert config.type == "cam_guard"
    cameras = make_cameras_from_configs({"wrist": config})
    assert isinstance(cameras["wrist"], CamGuardCamera) and not cameras["wrist"].is_connected
    with pytest.raises(ValueError, match="color_mode"):
        CamGuardCameraConfig(color_mode="yuv")
    with pytest.raises(ValueError, match="width and height"):
        CamGuardCameraConfig(width=0)


def test_reads_timeout_when_the_camera_dies_and_recover_when_it_returns(ros):
    camera = CamGuardCamera(CamGuardCameraConfig(width=320, height=240, connect_timeout_ms=20000))
    with pytest.raises(DeviceNotConnectedError):
        camera.read()
    node = NodeProcess("cam_guard.camera_node", CAMERA)
    try:
        camera.connect()
        first = camera.read()
        assert first.shape == (240, 320, 3) and first.dtype == np.uint8
        assert np.median(first[:, :, 0]) == 128, "RGB order: the synthetic red channel is 128"
        counters = [read_frame_counter(camera.async_read(timeout_ms=1000)) for _ in range(5)]
        assert counters == sorted(set(counters)), "async_read returns each new frame once, in order"
        assert camera.read_latest(max_age_ms=500).shape == (240, 320, 3)

        node.stop(signal.SIGKILL)
        killed = time.monotonic()
        # A killed node cannot say so; its state topic's liveliness lapses (1 s lease).
        message = ""
        while "NO_PUBLISHER" not in message and time.monotonic() - killed < 10:
            with pytest.raises(TimeoutError) as error:
                camera.async_read(timeout_ms=100)
            message = str(error.value)
        gone_after = time.monotonic() - killed
        assert "last reported camera state NO_PUBLISHER, STREAMING" not in message
        assert "last reported camera state NO_PUBLISHER" in message, message
        assert gone_after < 2.0, f"the trainer learnt that the camera is gone after {gone_after:.1f} s"
        with pytest.raises(TimeoutError, match="ms old"):
            camera.read_latest(max_age_ms=300)
        node.__exit__(None, None, None)

        node = NodeProcess("cam_guard.camera_node", CAMERA)
        frame = camera.async_read(timeout_ms=20000)
        assert frame.shape == (240, 320, 3)
        assert camera.read_latest(max_age_ms=500) is not None

        for _ in range(60):  # let this session's frame numbers run well ahead of a fresh ring's
            camera.async_read(timeout_ms=1000)
        camera.disconnect()
        camera.connect()
        assert camera.async_read(timeout_ms=1000).shape == (240, 320, 3), "a reconnect starts a new ring"
    finally:
        node.stop()
        node.__exit__(None, None, None)
        if camera.is_connected:
            camera.disconnect()
    assert not camera.is_connected
    with pytest.raises(DeviceNotConnectedError):
        camera.disconnect()


def test_connect_without_a_stream_fails_clearly(ros):
    camera = CamGuardCamera(CamGuardCameraConfig(topic="/nobody/image_raw", connect_timeout_ms=1500))
    with pytest.raises(ConnectionError, match="no frame within 1500 ms"):
        camera.connect()
    assert not camera.is_connected


def test_size_mismatch_is_refused_at_connect(ros):
    with NodeProcess("cam_guard.camera_node", CAMERA) as node:
        smaller = CamGuardCamera(CamGuardCameraConfig(width=640, height=480, connect_timeout_ms=20000))
        with pytest.raises(RuntimeError, match="frames are 320x240, the config says 640x480"):
            smaller.connect()
        larger = CamGuardCamera(CamGuardCameraConfig(width=160, height=120, connect_timeout_ms=30000))
        started = time.monotonic()
        with pytest.raises(ConnectionError, match=r"its frames are rejected .*320x240 bgr8 frame rejected"):
            larger.connect()
        assert time.monotonic() - started < 25, "connect gives up once frames are rejected, not at its timeout"
        node.stop()
    assert not smaller.is_connected and not larger.is_connected


def test_trainer_process_can_fork_while_frames_stream(ros):
    """LeRobot's side holds no thread and no lock: a fork while reading hangs neither process."""
    with NodeProcess("cam_guard.camera_node", CAMERA) as node:
        result = run_python("""
            import os, time
            from lerobot_camera_cam_guard import CamGuardCamera, CamGuardCameraConfig
            cfg = CamGuardCameraConfig(width=320, height=240, connect_timeout_ms=20000)
            camera = CamGuardCamera(cfg)
            camera.connect()
            for _ in range(10):
                camera.async_read(timeout_ms=2000)
            pid = os.fork()  # deliberately, while the stream runs
            if pid == 0:
                try:
                    camera.read_latest()
                    os._exit(2)
                except Exception as exc:  # the parent's camera is the parent's
                    if "belongs to process" not in str(exc):
                        print("child:", exc, flush=True)
                        os._exit(3)
                child = CamGuardCamera(cfg)
                child.connect()
                frames = [child.async_read(timeout_ms=2000) for _ in range(10)]
                child.disconnect()
                os._exit(0 if len(frames) == 10 else 1)
            for _ in range(30):
                camera.async_read(timeout_ms=2000)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    break
                time.sleep(0.05)
            else:
                os.kill(pid, 9)
                raise SystemExit("child hung")
            camera.disconnect()
            print("child", os.waitstatus_to_exitcode(status))
        """, timeout=90)
        node.stop()
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert "child 0" in result.stdout


def test_a_stall_is_reported_as_such_and_no_frame_older_than_the_timeout_is_returned(ros):
    with MjpegFaultServer(320, 240, 30) as server, NodeProcess(
            "cam_guard.camera_node", {"device": server.url, "width": 320, "height": 240, "stall_timeout": 0.5}):
        camera = CamGuardCamera(CamGuardCameraConfig(width=320, height=240, connect_timeout_ms=30000))
        camera.connect()
        try:
            before = read_frame_counter(camera.async_read(timeout_ms=2000))
            server.stall()  # frames the camera sent until now stay unread
            message = ""
            deadline = time.monotonic() + 15
            while "RECONNECTING" not in message and time.monotonic() < deadline:
                try:
                    camera.read_latest(max_age_ms=300)  # peeks; consumes nothing
                except TimeoutError as exc:
                    message = str(exc)
                time.sleep(0.05)
            assert "last reported camera state RECONNECTING, STALLED" in message, message
            with pytest.raises(TimeoutError, match=r"RECONNECTING, STALLED .* ago") as error:
                camera.async_read(timeout_ms=300)  # the unread frames are older than 300 ms
            assert "no new frame within 300 ms" in str(error.value)
            server.resume()
            frame = camera.async_read(timeout_ms=15000)
            assert read_frame_counter(frame) > before
            after = read_frame_counter(camera.async_read(timeout_ms=2000))
            assert after > read_frame_counter(frame)
        finally:
            camera.disconnect()


def test_find_cameras_lists_live_image_topics(ros):
    with NodeProcess("cam_guard.camera_node", CAMERA) as node:
        deadline = time.monotonic() + 20
        found = []
        while not any(c["id"] == "/image_raw" for c in found) and time.monotonic() < deadline:
            found = CamGuardCamera.find_cameras()
        node.stop()
    assert {"name": "/image_raw", "type": "cam_guard", "id": "/image_raw"} in found


class StepCounter(gym.Env):
    observation_space = gym.spaces.Discrete(1)
    action_space = gym.spaces.Discrete(1)

    def reset(self, *, seed=None, options=None):
        return 0, {}

    def step(self, action):
        return 0, -1.0, False, False, {"env": True}


def test_reward_source_and_gym_wrapper_follow_the_reward_node(ros):
    camera = NodeProcess("cam_guard.camera_node", {"device": "synthetic"})
    reward = NodeProcess("cam_guard.reward_node")
    try:
        with RewardSource() as source:
            with pytest.raises(TimeoutError, match=r"no reward at most 500 ms old within 10 ms \(last reported camera"):
                source.wait(max_age_ms=500, timeout_ms=10)  # before DDS discovery
            source.wait(max_age_ms=500, timeout_ms=20000)
            deadline = time.monotonic() + 20
            while True:  # state and reward are separate topics: wait for both
                try:
                    reading = source.latest(max_age_ms=500)
                    if reading.camera_state == "STREAMING":
                        break
                except TimeoutError:
                    pass
                assert time.monotonic() < deadline, "no fresh reward with the camera STREAMING"
                time.sleep(0.05)
            assert 0.0 <= reading.probability <= 1.0 and reading.threshold == 0.5
            assert reading.camera_state == "STREAMING" and reading.age_ms < 500
            env = CamGuardRewardWrapper(StepCounter(), source)
            env.reset()
            seen = set()
            for _ in range(200):  # the synthetic block crosses the success region every 2.5 s
                _, r, terminated, _, info = env.step(0)
                success = info["cam_guard_reward"].success
                assert success == (info["cam_guard_reward"].probability > 0.5), "LeRobot's rule: > threshold"
                # As LeRobot's reward-classifier step: success_reward on success, else the env's own reward.
                assert r == (1.0 if success else -1.0) and terminated == success and info["env"]
                seen.add(r)
                if seen == {-1.0, 1.0}:
                    break
                time.sleep(0.05)
            assert seen == {-1.0, 1.0}
            reward.stop(signal.SIGKILL)
            time.sleep(0.6)  # the last reward ages past max_age_ms
            with pytest.raises(TimeoutError, match="ms old"):
                env.step(0)
            lenient = CamGuardRewardWrapper(StepCounter(), source, on_stale="ignore")
            _, r, _, _, info = lenient.step(0)
            assert r == -1.0 and info["cam_guard_reward_stale"]
    finally:
        for node in (camera, reward):
            node.stop()
            node.__exit__(None, None, None)


def test_no_bridge_processes_or_rings_left_behind():
    leftovers = [f for f in os.listdir("/dev/shm") if f.startswith(f"cam_guard-bridge-{os.getpid()}-")]
    assert leftovers == []


def test_the_state_that_ended_streaming_is_kept_until_frames_return():
    streaming = follow_state(Status("UNKNOWN", "rejected"), "STREAMING", 1)
    assert streaming == Status("STREAMING", "rejected")
    # STALLED replaced in the publisher's history by the RECONNECTING that followed it
    reconnecting = follow_state(streaming, "RECONNECTING", 5)
    assert reconnecting == Status("RECONNECTING", "rejected", "STALLED", 5)
    assert follow_state(reconnecting, "NO_PUBLISHER", 9) == Status("NO_PUBLISHER", "rejected", "STALLED", 5)
    assert follow_state(follow_state(streaming, "STALLED", 6), "RECONNECTING", 7).fault_ns == 6
    assert follow_state(streaming, "NO_PUBLISHER", 8) == Status("NO_PUBLISHER", "rejected", "NO_PUBLISHER", 8)
    assert follow_state(reconnecting, "STREAMING", 10) == Status("STREAMING", "rejected")


def test_the_cameras_reason_comes_from_its_diagnostics_and_goes_only_with_the_state_it_was_given_for():
    def camera(state_topic: str, state: str, reason: str) -> DiagnosticStatus:
        return DiagnosticStatus(name="cam_guard: /front/camera", values=[
            KeyValue(key="state", value=state), KeyValue(key="reason", value=reason),
            KeyValue(key="state_topic", value=state_topic)])
    gone = "gone: /dev/video0 does not exist (unplugged?)"
    diagnostics = DiagnosticArray(status=[DiagnosticStatus(name="other node"),
                                          camera("/wrist/camera_state", "STREAMING", ""),
                                          camera("/front/camera_state", "RECONNECTING", gone)])
    assert camera_reason(diagnostics, "/front/camera_state") == ("RECONNECTING", gone)
    assert camera_reason(diagnostics, "/side/camera_state") is None
    reconnecting = Status("RECONNECTING", "", "STALLED", 5)
    assert with_reason(reconnecting, ("RECONNECTING", gone)).reason == gone
    assert with_reason(reconnecting._replace(state="NO_PUBLISHER"), ("RECONNECTING", gone)).reason == ""
    assert with_reason(Status("STREAMING", ""), ("STREAMING", "recovered")).reason == ""


def test_the_reward_teleoperator_adds_the_classifiers_success_to_the_humans_events():
    success = RewardReading(0.9, True, 0.5, 12.0, "STREAMING")
    failure = RewardReading(0.5, False, 0.5, 12.0, "STREAMING")
    human = {TeleopEvents.IS_INTERVENTION: True, TeleopEvents.TERMINATE_EPISODE: False,
             TeleopEvents.SUCCESS: False, TeleopEvents.RERECORD_EPISODE: False}
    assert merge_events(human, success) == {**human, TeleopEvents.SUCCESS: True}
    assert merge_events(human, failure) == human
    assert merge_events({**human, TeleopEvents.SUCCESS: True}, failure)[TeleopEvents.SUCCESS], "the human still can"
    assert merge_events(None, None) == NO_EVENTS  # no device, stale reward ignored
    assert merge_events(None, success)[TeleopEvents.SUCCESS]
