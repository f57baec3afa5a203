"""The multi-camera preview's pixels, without ROS."""

import numpy as np

from cam_guard.preview.overlay import BAR_HEIGHT, NO_SIGNAL_BGR, SUCCESS_BGR, OverlayInfo, banner_rows, draw_overlay
from cam_guard.preview.tiles import CELL_WIDTH, Tile, draw_cell, tile_decode_size, tile_rects


def info(**kw) -> OverlayInfo:
    base = {"probability": 0.8, "threshold": 0.5, "camera_state": "STREAMING", "frame_age_s": 0.01, "fps": 30.0}
    return OverlayInfo(**{**base, **kw})


def banner_pixel(image: np.ndarray) -> tuple[int, ...]:
    return tuple(int(v) for v in image[banner_rows(image.shape[0]).start + 1, 2])


def test_one_camera_is_drawn_as_before():
    frame = np.full((240, 320, 3), 90, np.uint8)
    np.testing.assert_array_equal(draw_cell([Tile("camera", frame, info())]), draw_overlay(frame, info()))
    blank = draw_cell([Tile("camera", None, info(frame_age_s=None))])
    assert banner_pixel(blank) == NO_SIGNAL_BGR


def test_tiles_sit_on_a_grid_as_wide_as_tall_in_tiles():
    assert [(r.x, r.y, r.width, r.height) for r in tile_rects(2, 9 / 16)] == [(0, 0, 640, 360), (640, 0, 640, 360)]
    four = tile_rects(4, 9 / 16)
    assert [(r.x, r.y) for r in four] == [(0, 0), (640, 0), (0, 360), (640, 360)]
    three = tile_rects(3, 0.75)
    assert len({(r.x, r.y) for r in three}) == 3 and three[2].y == 480


def test_each_camera_gets_its_own_tile_state_and_no_signal_and_the_bar_spans_the_cell():
    front = np.full((720, 1280, 3), 200, np.uint8)
    wrist = np.full((720, 1280, 3), 120, np.uint8)
    tiles = [Tile("front", front, info()), Tile("wrist", wrist, info(camera_state="STALLED", frame_age_s=3.0)),
             Tile("top", None, info(camera_state="STARTING", frame_age_s=None)), Tile("side", front, info())]
    out = draw_cell(tiles)
    rects = tile_rects(4, 720 / 1280)
    assert out.shape == (rects[-1].y + rects[-1].height + BAR_HEIGHT, CELL_WIDTH, 3)
    live, stalled, never, other = (r.of(out) for r in rects)
    assert (live[200, 300] == 200).all() and (other[200, 300] == 200).all(), "live tiles show their picture"
    assert banner_pixel(stalled) == NO_SIGNAL_BGR and banner_pixel(never) == NO_SIGNAL_BGR
    assert (stalled[banner_rows(360).start - 5, 600] == 40).all(), "a stale tile is its own picture, dimmed"
    assert banner_pixel(live) != NO_SIGNAL_BGR
    assert not (live[25:45, 8:200] == 200).all(), "each tile carries its status line"
    bottom = out.shape[0] - 3
    assert tuple(int(v) for v in out[bottom, int(0.7 * CELL_WIDTH)]) == SUCCESS_BGR, "probability 0.8 reaches 70%"
    assert tuple(int(v) for v in out[bottom, int(0.9 * CELL_WIDTH)]) == (30, 30, 30)


def test_a_camera_is_decoded_as_wide_as_its_tile():
    assert tile_decode_size(1) is None  # one camera is the whole picture, at its own size
    assert tile_decode_size(2) == tile_decode_size(4) == (0, CELL_WIDTH // 2)
    assert tile_decode_size(9) == (0, CELL_WIDTH // 3)
