"""Classifier backends and preprocessing, without ROS."""

import subprocess
import sys
import textwrap

import cv2
import numpy as np
import pytest
from onnx_models import mean_logit_model

from cam_guard.capture.synthetic import synthetic_frame
from cam_guard.reward.backends import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ClassifierError,
    ColorRuleClassifier,
    LeRobotClassifier,
    OnnxClassifier,
    Preprocessing,
    make_classifier,
)
from cam_guard.reward.success import is_success


def rgb_synthetic(index: int) -> np.ndarray:
    return cv2.cvtColor(synthetic_frame(index, 640, 480), cv2.COLOR_BGR2RGB)


def test_color_rule_sees_the_block_only_in_its_region():
    rule = ColorRuleClassifier()
    assert rule.predict([rgb_synthetic(0)]) == 0.0  # block at the left edge
    assert rule.predict([rgb_synthetic(60)]) == 1.0  # block at x = 480, inside the right half


def test_color_rule_with_several_cameras_needs_the_colour_in_every_camera():
    rule = ColorRuleClassifier(cameras=3)
    inside, outside = rgb_synthetic(60), rgb_synthetic(0)
    assert rule.predict([inside, inside, inside]) == 1.0
    assert rule.predict([inside, outside, inside]) == 0.0, "one camera without the colour vetoes"
    half = rgb_synthetic(60)
    half[:, 480:500] = 0  # hide half the block's width in one camera
    assert 0.0 < rule.predict([inside, half, inside]) == ColorRuleClassifier().predict([half]) < 1.0, \
        "the lowest counts"
    with pytest.raises(ClassifierError, match="3 camera"):
        rule.predict([inside])


@pytest.mark.parametrize("roi", [(0.6, 0.0, 0.5, 1.0), (0.0, 0.0, 0.0, 1.0), (-0.1, 0, 0.5, 0.5)])
def test_color_rule_refuses_a_region_outside_the_image(roi):
    with pytest.raises(ClassifierError, match="roi"):
        ColorRuleClassifier(roi=roi)


def test_preprocessing_crops_resizes_and_normalises_like_lerobot():
    image = np.zeros((480, 640, 3), np.uint8)
    image[100:200, 50:150] = 255
    pre = Preprocessing((128, 128), [(100, 50, 100, 100)])
    tensor = pre.to_tensor(image, 0)
    assert tensor.shape == (1, 3, 128, 128) and tensor.dtype == np.float32
    np.testing.assert_allclose(tensor[0, :, 64, 64], (1.0 - IMAGENET_MEAN) / IMAGENET_STD, rtol=1e-5)
    uncropped = Preprocessing((128, 128)).to_tensor(image, 0)
    np.testing.assert_allclose(uncropped[0, :, 0, 0], (0.0 - IMAGENET_MEAN) / IMAGENET_STD, rtol=1e-5)


def test_crop_outside_the_image_is_a_clear_error():
    with pytest.raises(ClassifierError, match="exceeds"):
        Preprocessing((128, 128), [(400, 0, 100, 100)]).to_tensor(np.zeros((480, 640, 3), np.uint8), 0)


def test_onnx_model_gives_sigmoid_of_its_logit(tmp_path):
    model = OnnxClassifier(str(mean_logit_model(tmp_path / "m.onnx")), Preprocessing())
    white = model.predict([np.full((480, 640, 3), 255, np.uint8)])
    black = model.predict([np.zeros((480, 640, 3), np.uint8)])
    expected_white = 1 / (1 + np.exp(-np.mean((1.0 - IMAGENET_MEAN) / IMAGENET_STD)))
    assert white == pytest.approx(expected_white, rel=1e-4)
    assert black < 0.2 < 0.8 < white


def test_onnx_model_with_two_cameras(tmp_path):
    model = OnnxClassifier(str(mean_logit_model(tmp_path / "m.onnx", cameras=2)), Preprocessing())
    assert model.cameras == 2
    assert model.predict([np.full((64, 64, 3), 255, np.uint8)] * 2) > 0.9


def test_onnx_model_inputs_follow_the_camera_order(tmp_path):
    model = OnnxClassifier(str(mean_logit_model(tmp_path / "m.onnx", cameras=2, weights=[1.0, -1.0])),
                           Preprocessing())
    white, black = np.full((64, 64, 3), 255, np.uint8), np.zeros((64, 64, 3), np.uint8)
    assert model.predict([white, black]) > 0.9 and model.predict([black, white]) < 0.1


def test_onnx_wrong_input_size_missing_and_corrupt_files(tmp_path):
    small = mean_logit_model(tmp_path / "small.onnx", size=64)
    with pytest.raises(ClassifierError, match=r"shape \[1, 3, 64, 64\]; expected \[N, 3, 128, 128\]"):
        OnnxClassifier(str(small), Preprocessing())
    with pytest.raises(ClassifierError, match="does not exist"):
        OnnxClassifier(str(tmp_path / "none.onnx"), Preprocessing())
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"\x08\x07garbage" * 100)
    with pytest.raises(ClassifierError, match="cannot load ONNX model"):
        OnnxClassifier(str(corrupt), Preprocessing())


def backend_error_without(module: str) -> str:
    """The lerobot backend's error in a fresh interpreter where `module` cannot be imported."""
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(f"""
        import sys
        sys.modules[{module!r}] = None  # what Python does for a package that is not installed
        from cam_guard.reward.backends import ClassifierError, LeRobotClassifier, Preprocessing
        try:
            LeRobotClassifier("/nonexistent", Preprocessing())
        except ClassifierError as exc:
            print(exc)
    """)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip()


@pytest.mark.parametrize("module", ["lerobot", "torch"])
def test_lerobot_backend_without_lerobot_or_torch_names_the_pip_command(module):
    assert backend_error_without(module) == (
        f"the lerobot backend needs the '{module}' package, which is not installed; "
        "install it with: pip install 'lerobot[transformers-dep]==0.4.4'")


def test_lerobot_backend_names_a_missing_dependency_of_lerobot():
    assert backend_error_without("av").startswith("the lerobot backend needs the 'av' package, which is not installed")


def test_lerobot_backend_names_a_module_an_old_lerobot_lacks():
    message = backend_error_without("lerobot.policies.sac.reward_model.modeling_classifier")
    assert message == ("the lerobot backend needs lerobot.policies.sac.reward_model.modeling_classifier, which "
                       "lerobot 0.4.4 lacks; install it with: pip install 'lerobot[transformers-dep]==0.4.4'")


def test_unknown_backend():
    with pytest.raises(ClassifierError, match="unknown backend"):
        make_classifier("magic", "", Preprocessing())


def test_lerobot_backend_runs_a_real_lerobot_checkpoint(lerobot_checkpoint):
    import torch
    from lerobot.policies.sac.reward_model.modeling_classifier import Classifier

    classifier = LeRobotClassifier(str(lerobot_checkpoint), Preprocessing((128, 128), [(0, 0, 240, 320)]))
    assert classifier.cameras == 1
    image = rgb_synthetic(60)
    ours = classifier.predict([image])
    # The same prediction, preprocessed independently: crop, area resize, /255, ImageNet mean/std, NCHW.
    crop = cv2.resize(image[0:240, 0:320], (128, 128), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    tensor = torch.from_numpy(((crop - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]).astype(np.float32))
    model = Classifier.from_pretrained(str(lerobot_checkpoint)).eval()
    with torch.inference_mode():
        expected = float(model.predict([tensor.permute(2, 0, 1)[None]]).probabilities.reshape(-1)[0])
    assert ours == pytest.approx(expected, abs=1e-5)
    assert 0.0 < ours < 1.0
    assert classifier.predict([np.zeros_like(image)]) != pytest.approx(ours, abs=1e-6)


def test_lerobot_backend_takes_one_input_per_camera_in_order(tmp_path):
    import torch
    from lerobot.policies.sac.reward_model.modeling_classifier import Classifier

    from cam_guard.testing.lerobot_checkpoint import reward_classifier_checkpoint

    checkpoint = reward_classifier_checkpoint(tmp_path, cameras=2)
    classifier = LeRobotClassifier(str(checkpoint), Preprocessing((128, 128)))
    assert classifier.cameras == 2
    front, wrist = rgb_synthetic(60), np.zeros((480, 640, 3), np.uint8)
    ours = classifier.predict([front, wrist])
    pre = Preprocessing((128, 128))
    model = Classifier.from_pretrained(str(checkpoint)).eval()
    with torch.inference_mode():
        expected = float(model.predict([torch.from_numpy(pre.to_tensor(front, 0)),
                                        torch.from_numpy(pre.to_tensor(wrist, 1))]).probabilities.reshape(-1)[0])
    assert ours == pytest.approx(expected, abs=1e-5)
    assert classifier.predict([wrist, front]) != pytest.approx(ours, abs=1e-6), "the order reaches the model"


def test_lerobot_backend_refuses_a_directory_without_a_checkpoint(lerobot_checkpoint, tmp_path):
    with pytest.raises(ClassifierError, match="cannot load LeRobot classifier"):
        LeRobotClassifier(str(tmp_path), Preprocessing())


def test_success_is_lerobots_rule_probability_above_threshold():
    assert is_success(0.51, 0.5) and not is_success(0.5, 0.5) and not is_success(0.49, 0.5)
    assert not is_success(1.0, 1.0) and is_success(0.01, 0.0) and not is_success(0.0, 0.0)


def test_a_model_runs_on_the_cpu_threads_it_is_given(tmp_path, lerobot_checkpoint):
    import torch

    threads = torch.get_num_threads()
    try:
        LeRobotClassifier(str(lerobot_checkpoint), Preprocessing(), cpu_threads=1)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)
    onnx = OnnxClassifier(str(mean_logit_model(tmp_path / "m.onnx")), Preprocessing(), cpu_threads=1)
    assert onnx._session.get_session_options().intra_op_num_threads == 1


def test_a_camera_without_a_crop_needs_frames_only_as_large_as_the_model_input():
    preprocessing = Preprocessing((128, 128), [None, (0, 0, 240, 320)])
    assert preprocessing.decode_size(0) == (128, 128)
    assert preprocessing.decode_size(1) is None  # crop coordinates are the camera's full-size pixels
    assert Preprocessing((96, 96)).decode_size(3) == (96, 96)
