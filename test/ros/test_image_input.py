"""Raw or compressed input, decoded in one place; a camera is gone when its frames stop arriving."""

import cv2
import numpy as np
import pytest

from cam_guard.ros.image_conversion import ImageConversionError, to_compressed_msg, to_image_msg
from cam_guard.ros.image_input import ArrivalWatch, describe, input_topic, to_array


def test_transport_names_the_topic_as_image_transport_does():
    assert input_topic("image_raw", "raw") == "image_raw"
    assert input_topic("/cam0/image_raw", "compressed") == "/cam0/image_raw/compressed"
    with pytest.raises(ValueError, match="raw, compressed"):
        input_topic("image_raw", "theora")


def test_raw_and_compressed_frames_decode_to_the_same_picture():
    bgr = np.zeros((48, 64, 3), np.uint8)
    bgr[:, :32] = (255, 0, 0)  # left half blue
    raw = to_image_msg(bgr, "bgr8")
    jpeg = to_compressed_msg(cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes())
    for msg in (raw, jpeg):
        rgb = to_array(msg, "rgb8")
        assert rgb.shape == (48, 64, 3)
        assert rgb[24, 8, 2] > 200 and rgb[24, 8, 0] < 50, describe(msg)  # blue lands in the B channel of RGB
        assert np.abs(to_array(msg, "bgr8").astype(int) - bgr).mean() < 4  # JPEG rings only at the edge
    assert describe(raw) == "64x48 bgr8" and describe(jpeg).startswith("jpeg, ")
    jpeg.data = jpeg.data[:200]  # truncated
    with pytest.raises(ImageConversionError, match="could not decode"):
        to_array(jpeg, "rgb8")


def test_a_camera_is_gone_when_frames_stop_for_several_frame_periods():
    watch = ArrivalWatch(min_gap_s=0.5, periods=5)
    assert not watch.gone(now=100.0) and watch.age_s(now=100.0) is None  # never seen: unknown, not gone
    for i in range(10):
        watch.arrived(now=100.0 + i / 30)
    last = 100.0 + 9 / 30
    assert not watch.gone(now=last + 0.4)
    assert watch.gone(now=last + 0.6)
    slow = ArrivalWatch(min_gap_s=0.5, periods=5)
    for i in range(5):
        slow.arrived(now=200.0 + i * 0.5)  # a 2 fps camera
    assert not slow.gone(now=202.0 + 2.0) and slow.gone(now=202.0 + 2.6)


def test_a_jpeg_is_decoded_only_as_large_as_the_consumer_needs():
    bgr = cv2.resize(np.arange(256, dtype=np.uint8).reshape(16, 16), (1280, 720))
    bgr = cv2.cvtColor(bgr, cv2.COLOR_GRAY2BGR)
    jpeg = to_compressed_msg(cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes())
    assert to_array(jpeg, "rgb8").shape == (720, 1280, 3)
    small = to_array(jpeg, "rgb8", (128, 128))
    assert small.shape == (180, 320, 3)  # 1/4: the smallest scale at least 128 high and wide (1/8 is 90 high)
    assert to_array(jpeg, "bgr8", (0, 640)).shape == (360, 640, 3)
    assert np.abs(small.astype(int) - cv2.resize(bgr, (320, 180), interpolation=cv2.INTER_AREA)).mean() < 3
    raw = to_image_msg(bgr, "bgr8")
    assert to_array(raw, "rgb8", (128, 128)).shape == (720, 1280, 3)  # a raw frame comes as it is
