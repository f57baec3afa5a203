"""The preview overlay's pixels, without ROS."""

import numpy as np

from cam_guard.preview.overlay import (
    BAR_BACKGROUND_BGR,
    BAR_HEIGHT,
    FAILURE_BGR,
    NO_SIGNAL_BGR,
    STATUS_ORIGIN,
    SUCCESS_BGR,
    OverlayInfo,
    banner_rows,
    draw_overlay,
)


def info(**kw) -> OverlayInfo:
    base = {"probability": 0.8, "threshold": 0.5, "camera_state": "STREAMING", "frame_age_s": 0.01, "fps": 30.0}
    return OverlayInfo(**{**base, **kw})


def bar_pixel(image: np.ndarray, x: int) -> tuple[int, ...]:
    return tuple(int(v) for v in image[image.shape[0] - 3, x])


def test_bar_length_and_colour_follow_probability_and_threshold():
    frame = np.full((240, 320, 3), 100, np.uint8)
    success = draw_overlay(frame, info(probability=0.8))
    assert bar_pixel(success, 200) == SUCCESS_BGR  # 200/319 < 0.8: inside the bar
    assert bar_pixel(success, 300) == (30, 30, 30)  # beyond 0.8: empty bar
    failure = draw_overlay(frame, info(probability=0.3))
    assert bar_pixel(failure, 50) == FAILURE_BGR
    assert bar_pixel(draw_overlay(frame, info(probability=0.5)), 50) == FAILURE_BGR  # a tie: LeRobot says no
    assert bar_pixel(draw_overlay(frame, info(probability=None)), 50) == (30, 30, 30)


def test_live_frame_keeps_its_pixels_and_input_is_untouched():
    frame = np.full((240, 320, 3), 100, np.uint8)
    out = draw_overlay(frame, info())
    assert (frame == 100).all()
    assert (out[120, 160] == 100).all()  # middle of the picture: no banner, not dimmed
    assert out.shape == frame.shape and out.dtype == np.uint8
    assert BAR_HEIGHT < 240


def test_stale_frame_is_dimmed_under_a_no_signal_banner():
    frame = np.full((240, 320, 3), 150, np.uint8)
    out = draw_overlay(frame, info(frame_age_s=2.5))
    rows = banner_rows(240)
    assert tuple(int(v) for v in out[rows.start + 1, 2]) == NO_SIGNAL_BGR
    assert (out[rows.start - 5, 300] == 50).all()  # dimmed to a third
    assert draw_overlay(frame, info(frame_age_s=None))[rows.start + 1, 2].tolist() == list(NO_SIGNAL_BGR)


def test_status_line_is_white_on_a_dark_box_below_the_frame_number():
    frame = np.full((240, 320, 3), 200, np.uint8)
    out = draw_overlay(frame, info(camera_state="STREAMING"))
    status = out[STATUS_ORIGIN[1] - 12:STATUS_ORIGIN[1] + 2, STATUS_ORIGIN[0]:STATUS_ORIGIN[0] + 150]
    assert (status == BAR_BACKGROUND_BGR).all(axis=2).sum() > status.shape[0] * status.shape[1] // 2
    assert (status > 200).all(axis=2).sum() > 50  # the text (OpenCV 4.12 anti-aliases: few reach 240)
    assert (out[:16] == 200).all(), "the frame-number rows stay as they were"
