"""Built-in synthetic camera: a moving pattern with the frame number drawn in.

It is the embedded default source when no camera exists, and the picture the fault-injection
server streams, so tests can read the frame number back out of the pixels.
"""

import cv2
import numpy as np

# The frame number is also written as a row of black/white blocks so that tests can decode it
# from a JPEG-compressed, resized frame without OCR.
COUNTER_BITS = 16
_BLOCK = 16


def synthetic_frame(index: int, width: int, height: int) -> np.ndarray:
    """Return frame `index` of the synthetic pattern as an H×W×3 uint8 BGR image."""
    ys, xs = np.ogrid[:height, :width]
    shift = (index * 4) % 256
    frame = np.empty((height, width, 3), np.uint8)
    frame[..., 0] = ((xs + shift) % 256).astype(np.uint8)
    frame[..., 1] = ((ys + shift) % 256).astype(np.uint8)
    frame[..., 2] = 128
    x = int((index * 8) % max(1, width - 40))
    cv2.rectangle(frame, (x, height // 2 - 20), (x + 40, height // 2 + 20), (0, 255, 255), -1)
    cv2.putText(frame, f"cam_guard #{index}", (10, height - 12), cv2.FONT_HERSHEY_SIMPLEX,
                max(0.4, width / 1000), (255, 255, 255), 2, cv2.LINE_AA)
    if width >= COUNTER_BITS * _BLOCK and height >= _BLOCK:
        for bit in range(COUNTER_BITS):
            value = 255 if (index >> bit) & 1 else 0
            frame[:_BLOCK, bit * _BLOCK:(bit + 1) * _BLOCK] = value
    return frame


def read_frame_counter(frame: np.ndarray) -> int:
    """Decode the frame number written by `synthetic_frame` (BGR or RGB, any JPEG quality)."""
    index = 0
    for bit in range(COUNTER_BITS):
        block = frame[2:_BLOCK - 2, bit * _BLOCK + 2:(bit + 1) * _BLOCK - 2]
        if block.mean() > 127:
            index |= 1 << bit
    return index
