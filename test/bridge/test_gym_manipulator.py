"""LeRobot's own HIL-SERL loop, `python -m lerobot.rl.gym_manipulator`, with a cam_guard camera and
cam_guard's rewards chosen by configuration alone, on a hardware-free robot (hardware_free_arm/).

It runs in record mode, so LeRobot itself writes down what the loop saw: per step the reward and
done flag, and the camera's frames as video, whose pixels carry the synthetic camera's frame numbers.
"""

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import av
import pandas as pd
import pytest
from helpers import NodeProcess

from cam_guard.capture.synthetic import read_frame_counter

EPISODES = 3
FPS = 10
CONTROL_TIME_S = 60  # the time limit is far off: only success ends an episode this soon
CAMERA = {"device": "synthetic", "width": 320, "height": 240}


def gym_manipulator_config(dataset_root: Path) -> dict:
    return {
        "env": {
            "fps": FPS,
            "robot": {"type": "hardware_free_arm",
                      "cameras": {"front": {"type": "cam_guard", "topic": "/image_raw", "width": 320, "height": 240,
                                            "fps": 30, "connect_timeout_ms": 60000}}},
            "teleop": {"type": "cam_guard_reward", "reward_topic": "/reward/stamped", "connect_timeout_ms": 60000},
            "processor": {"reset": {"control_time_s": CONTROL_TIME_S, "terminate_on_success": True}},
        },
        "dataset": {"repo_id": "cam_guard/hardware_free_arm", "root": str(dataset_root), "task": "reach",
                    "num_episodes_to_record": EPISODES},
        "mode": "record",
    }


@pytest.mark.timeout(600)
def test_gym_manipulator_episodes_end_on_cam_guard_success_and_record_cam_guard_frames(ros, tmp_path):
    dataset = tmp_path / "dataset"
    config = tmp_path / "env_config.json"
    config.write_text(json.dumps(gym_manipulator_config(dataset)))
    plugins = str(Path(__file__).parent)  # hardware_free_arm
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (plugins, os.environ.get("PYTHONPATH")) if p),
           "HF_LEROBOT_HOME": str(tmp_path / "lerobot_home"), "HF_HUB_OFFLINE": "1"}
    with NodeProcess("cam_guard.camera_node", CAMERA) as camera, NodeProcess("cam_guard.reward_node") as reward:
        result = subprocess.run(
            [sys.executable, "-m", "lerobot.rl.gym_manipulator", f"--config_path={config}",
             "--env.discover_packages_path=lerobot_camera_cam_guard",
             "--env.robot.discover_packages_path=hardware_free_arm"],
            capture_output=True, text=True, timeout=500, env=env, cwd=tmp_path, stdin=subprocess.DEVNULL)
        camera.stop()
        reward.stop()
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    assert "'observation.images.front': Box(0, 255, (240, 320, 3), uint8)" in output, output[-5000:]

    steps = pd.read_parquet(dataset / "data").sort_values("index")
    assert sorted(steps["episode_index"].unique()) == list(range(EPISODES))
    for _, episode in steps.groupby("episode_index"):
        # Each episode ends at its first success, with LeRobot's success reward; before it, the
        # env's own reward (0) is kept.
        assert len(episode) < CONTROL_TIME_S * FPS
        assert episode["next.reward"].tolist() == [0.0] * (len(episode) - 1) + [1.0]
        assert episode["next.done"].tolist() == [False] * (len(episode) - 1) + [True]

    with av.open(str(next((dataset / "videos" / "observation.images.front").rglob("*.mp4")))) as video:
        frames = [frame.to_ndarray(format="rgb24") for frame in video.decode(video=0)]
    assert len(frames) == len(steps)
    assert all(frame.shape == (240, 320, 3) for frame in frames)
    numbers = [read_frame_counter(frame) for frame in frames]
    assert all(a < b for a, b in itertools.pairwise(numbers)), f"each observation is a newer camera frame: {numbers}"
