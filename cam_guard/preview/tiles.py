"""The preview of a cell of cameras: one image with a tile per camera. No ROS here.

One camera is drawn exactly as `draw_overlay` draws it (full size, nothing changes for a one-camera
graph). Several are laid out on a grid CELL_WIDTH pixels wide, each tile with the camera's name,
state, frame age and fps, and NO SIGNAL over its own dimmed picture when it is stale; the reward's
probability bar and threshold run along a strip below the grid.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from cam_guard.preview.overlay import (
    BAR_HEIGHT,
    OverlayInfo,
    blank_frame,
    draw_no_signal,
    draw_overlay,
    draw_probability_bar,
    draw_status,
    status_text,
)

CELL_WIDTH = 1280  # two tiles of 640 side by side for two to four cameras


@dataclass(frozen=True)
class Tile:
    label: str
    frame: np.ndarray | None  # BGR; None before the camera's first frame
    info: OverlayInfo  # this camera's state, age and fps; probability and threshold are the cell's


@dataclass(frozen=True)
class Rect:
    x: int
    y: int
    width: int
    height: int

    def of(self, image: np.ndarray) -> np.ndarray:
        return image[self.y:self.y + self.height, self.x:self.x + self.width]


def tile_rects(cameras: int, aspect: float, width: int = CELL_WIDTH) -> list[Rect]:
    """Where each camera's tile goes, row by row, on a grid about as wide as tall in tiles;
    `aspect` is height / width of a tile."""
    columns = math.ceil(math.sqrt(cameras))
    tile_width = width // columns
    tile_height = round(tile_width * aspect)
    return [Rect((i % columns) * tile_width, (i // columns) * tile_height, tile_width, tile_height)
            for i in range(cameras)]


def tile_decode_size(cameras: int) -> tuple[int, int] | None:
    """The least (height, width) a camera's frame must have to fill its tile: None (full size) for one camera,
    whose frame is the whole picture."""
    return None if cameras < 2 else (0, tile_rects(cameras, 0.0)[0].width)


def draw_cell(tiles: Sequence[Tile]) -> np.ndarray:
    """A new BGR image showing every camera of the cell and the reward."""
    if len(tiles) == 1:
        tile = tiles[0]
        return draw_overlay(tile.frame if tile.frame is not None else blank_frame(), tile.info)
    shapes = [t.frame.shape for t in tiles if t.frame is not None]
    height, width = shapes[0][:2] if shapes else blank_frame().shape[:2]
    rects = tile_rects(len(tiles), height / width)
    grid_bottom = max(r.y + r.height for r in rects)
    out = np.zeros((grid_bottom + BAR_HEIGHT, CELL_WIDTH, 3), np.uint8)
    for tile, rect in zip(tiles, rects, strict=True):
        region = rect.of(out)
        if tile.frame is not None:
            # Linear is enough for a preview and several times cheaper than area averaging.
            region[:] = cv2.resize(tile.frame, (rect.width, rect.height), interpolation=cv2.INTER_LINEAR)
        if tile.info.stale:
            draw_no_signal(region)
        draw_status(region, status_text(tile.info, tile.label))
    info = tiles[0].info
    draw_probability_bar(out, info.probability, info.threshold)
    return out
