"""reward_node with the lerobot backend: a real LeRobot checkpoint in a real node process."""

import os
import time

from geometry_msgs.msg import Vector3Stamped
from helpers import NodeProcess, assert_config_error

CAMERA = {"device": "synthetic", "width": 320, "height": 240}

# What PyPI's torchvision does beside a torch it was not built for: its operator registrations
# fail inside torch (`operator torchvision::nms does not exist`). torch itself raises it here.
MISMATCHED_TORCHVISION = '''import torch
torch.library.register_fake("torchvision::nms")(lambda dets, scores, iou_threshold: dets)
'''


def test_a_torchvision_torch_mismatch_is_one_error_line_naming_torchvision(ros, lerobot_checkpoint, tmp_path):
    (tmp_path / "torchvision").mkdir()
    (tmp_path / "torchvision" / "__init__.py").write_text(MISMATCHED_TORCHVISION)
    path = os.pathsep.join(p for p in (str(tmp_path), os.environ.get("PYTHONPATH", "")) if p)
    with NodeProcess("cam_guard.reward_node", {"backend": "lerobot", "model_path": str(lerobot_checkpoint)},
                     env={"PYTHONPATH": path}) as node:
        error = assert_config_error(node, "the lerobot backend cannot import torchvision", timeout=180)
    assert "RuntimeError: operator torchvision::nms does not exist" in error
    assert "must be the build for the installed torch" in error and "pip install lerobot" not in error


def test_ctrl_c_stops_the_lerobot_backend_within_2_s(probe, lerobot_checkpoint):
    rewards = probe.subscribe(Vector3Stamped, "/reward/stamped")
    with NodeProcess("cam_guard.camera_node", CAMERA) as camera, NodeProcess(
            "cam_guard.reward_node", {"backend": "lerobot", "model_path": str(lerobot_checkpoint)},
            own_session=True) as reward:
        rewards.wait_for(lambda ms: len(ms) >= 3, timeout=180, what="rewards from the lerobot backend")
        started = time.monotonic()
        reward.interrupt_group()  # Ctrl-C in its terminal
        code = reward.wait(timeout=30)
        took = time.monotonic() - started
        output = reward.output()
        camera.stop()
    assert code == 0, output[-3000:]
    assert took < 2.0, f"reward_node took {took:.2f} s to exit"
    assert "Traceback" not in output
