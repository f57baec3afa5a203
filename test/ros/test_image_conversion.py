"""Image <-> numpy with cv_bridge's semantics (no ROS graph needed, only message classes)."""

import numpy as np
import pytest
from sensor_msgs.msg import Image

from cam_guard.ros.image_conversion import (
    ImageConversionError,
    from_compressed_msg,
    from_image_msg,
    stamp_to_ns,
    to_compressed_msg,
    to_image_msg,
)


@pytest.mark.parametrize(("encoding", "dtype", "shape"), [
    ("bgr8", np.uint8, (4, 5, 3)), ("rgb8", np.uint8, (4, 5, 3)), ("mono8", np.uint8, (4, 5)),
    ("mono16", np.uint16, (4, 5)), ("bgra8", np.uint8, (4, 5, 4)), ("32FC1", np.float32, (4, 5)),
    ("16UC3", np.uint16, (2, 3, 3)), ("64FC2", np.float64, (2, 3, 2)),
])
def test_round_trip_keeps_pixels_step_and_header(encoding, dtype, shape):
    rng = np.random.default_rng(0)
    image = (rng.random(shape) * 200).astype(dtype)
    msg = to_image_msg(image, encoding, stamp_ns=1_700_000_000_123_456_789, frame_id="cam")
    assert (msg.height, msg.width, msg.encoding) == (shape[0], shape[1], encoding)
    assert msg.step == shape[1] * (shape[2] if len(shape) == 3 else 1) * np.dtype(dtype).itemsize
    assert len(msg.data) == msg.step * msg.height
    assert stamp_to_ns(msg.header.stamp) == 1_700_000_000_123_456_789 and msg.header.frame_id == "cam"
    back = from_image_msg(msg)
    assert back.dtype == dtype and back.shape == shape
    np.testing.assert_array_equal(back, image)


def test_passthrough_is_a_view_of_the_message_buffer():
    msg = to_image_msg(np.zeros((2, 2, 3), np.uint8), "bgr8")
    view = from_image_msg(msg)
    msg.data[0] = 7
    assert view[0, 0, 0] == 7


def test_row_padding_in_step_is_skipped():
    msg = Image(height=2, width=2, encoding="mono8", step=4)
    msg.data = bytes([1, 2, 99, 99, 3, 4, 99, 99])
    np.testing.assert_array_equal(from_image_msg(msg), [[1, 2], [3, 4]])


def test_big_endian_data_is_read_correctly():
    msg = Image(height=1, width=2, encoding="mono16", step=4, is_bigendian=1)
    msg.data = bytes([0x01, 0x02, 0x03, 0x04])
    np.testing.assert_array_equal(from_image_msg(msg), [[0x0102, 0x0304]])


def test_desired_encoding_converts_colour_order():
    bgr = np.zeros((1, 1, 3), np.uint8)
    bgr[0, 0] = (10, 20, 30)
    rgb = from_image_msg(to_image_msg(bgr, "bgr8"), "rgb8")
    assert tuple(rgb[0, 0]) == (30, 20, 10)
    assert from_image_msg(to_image_msg(bgr, "bgr8"), "mono8").shape == (1, 1)


@pytest.mark.parametrize(("image", "encoding", "reason"), [
    (np.zeros((2, 2, 3), np.uint16), "bgr8", "dtype"),
    (np.zeros((2, 2), np.uint8), "bgr8", "channel"),
    (np.zeros((2, 2, 3), np.uint8), "yuv9", "unsupported encoding"),
])
def test_mismatched_array_and_encoding_is_refused(image, encoding, reason):
    with pytest.raises(ImageConversionError, match=reason):
        to_image_msg(image, encoding)


def test_short_data_or_step_is_refused():
    msg = Image(height=2, width=2, encoding="bgr8", step=6)
    msg.data = bytes(6)
    with pytest.raises(ImageConversionError, match="data holds"):
        from_image_msg(msg)
    msg.step = 5
    with pytest.raises(ImageConversionError, match="step"):
        from_image_msg(msg)


def test_compressed_round_trip_and_garbage():
    import cv2

    image = np.full((8, 8, 3), (0, 0, 255), np.uint8)
    jpeg = cv2.imencode(".jpg", image)[1].tobytes()
    msg = to_compressed_msg(jpeg, "jpeg", 5, "cam")
    assert bytes(msg.data) == jpeg and msg.format == "jpeg"
    rgb = from_compressed_msg(msg, "rgb8")
    assert rgb[4, 4, 0] > 200 and rgb[4, 4, 2] < 50
    msg.data = b"not a jpeg"
    with pytest.raises(ImageConversionError, match="could not decode"):
        from_compressed_msg(msg)
