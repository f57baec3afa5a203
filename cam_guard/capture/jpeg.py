"""MJPEG frames as cameras hand them over: where the JPEG ends, whether it is whole, its pixels.

Hardware encoders put bytes after the end-of-image marker: the Raspberry Pi encoder pads to a
4-byte boundary, ESP32-CAM firmware leaves stale DMA-buffer bytes, UVC payloads can carry zero
fill. Decoders stop at EOI and ignore them, so must we: `jpeg_extent` walks the marker structure
from SOI to the first EOI (the image's own, not an EOI-looking pair in the padding or in an
embedded thumbnail), and `camera_jpeg` cuts the frame there. `image_raw/compressed` carries
those bytes: the camera's JPEG, never re-encoded, without the fill after it.

A frame whose data ends before its EOI is truncated; one whose structure breaks is corrupt.
Entropy-coded data that is scrambled but keeps the markers passes the walk; libjpeg-turbo in
strict mode (simplejpeg) catches it, at full size when someone needs the pixels, at 1/8 scale
in grey otherwise (the same Huffman decode of every coefficient, a third of the cost).
"""

import re
from dataclasses import dataclass

import cv2
import numpy as np

try:  # libjpeg-turbo with strict error checking: 2x faster than cv2.imdecode here (bench/frame_costs.py),
    import simplejpeg  # and it rejects corrupt entropy data that cv2 decodes into garbage pixels
except ImportError:  # e.g. an apt/colcon install without it: cv2 still decodes, less strictly
    simplejpeg = None

_SOI, _EOI, _SOS = 0xD8, 0xD9, 0xDA
_STANDALONE = frozenset(range(0xD0, 0xD8)) | {0x01}  # RSTn and TEM carry no length
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # DHT, JPG and DAC share the range
# Inside entropy-coded data 0xFF is followed by 0x00 (stuffing) or a restart marker; anything
# else ends the scan (0xFF 0xFF is fill before the next marker).
_SCAN_END = re.compile(rb"\xff[^\x00\xd0-\xd7]")


class TruncatedJpegError(ValueError):
    """The data ends before the image's end-of-image marker."""


class CorruptJpegError(ValueError):
    """Not a JPEG, a broken marker structure, or entropy data the decoder refuses."""


@dataclass(frozen=True)
class JpegExtent:
    end: int  # offset just past the image's EOI; anything from here on is padding
    width: int
    height: int


def jpeg_extent(data: bytes) -> JpegExtent:
    """Walk the marker segments from SOI to EOI; raises TruncatedJpegError or CorruptJpegError."""
    size = len(data)
    if size < 4 or data[0] != 0xFF or data[1] != _SOI:
        raise CorruptJpegError("not a JPEG frame (no start-of-image marker)")
    pos = 2
    width = height = 0
    scanned = False
    while True:
        if pos >= size:
            raise TruncatedJpegError(f"truncated JPEG frame ({size} bytes, no end-of-image marker)")
        if data[pos] != 0xFF:
            raise CorruptJpegError(f"corrupt JPEG frame (no marker at byte {pos})")
        while pos < size and data[pos] == 0xFF:  # a marker may be preceded by fill bytes
            pos += 1
        if pos >= size:
            raise TruncatedJpegError(f"truncated JPEG frame ({size} bytes, ends in fill bytes)")
        marker = data[pos]
        pos += 1
        if marker == _EOI:
            if not (scanned and width and height):
                raise CorruptJpegError("corrupt JPEG frame (end-of-image before any image data)")
            return JpegExtent(pos, width, height)
        if marker in _STANDALONE:
            continue
        if marker == 0x00:
            raise CorruptJpegError(f"corrupt JPEG frame (stuffed byte outside a scan at byte {pos})")
        if pos + 2 > size:
            raise TruncatedJpegError(f"truncated JPEG frame ({size} bytes, cut inside a marker segment)")
        length = (data[pos] << 8) | data[pos + 1]
        if length < 2:
            raise CorruptJpegError(f"corrupt JPEG frame (segment length {length} at byte {pos})")
        segment_end = pos + length
        if marker in _SOF and length >= 7 and pos + 7 <= size:
            height = (data[pos + 3] << 8) | data[pos + 4]
            width = (data[pos + 5] << 8) | data[pos + 6]
        pos = segment_end
        if marker == _SOS:
            if not (width and height):
                raise CorruptJpegError("corrupt JPEG frame (scan before the frame header)")
            scanned = True
            found = _SCAN_END.search(data, pos)
            pos = found.start() if found else size


def camera_jpeg(data: bytes) -> tuple[bytes, JpegExtent]:
    """The JPEG itself (padding after its EOI cut off) and its extent."""
    extent = jpeg_extent(data)
    return (data if extent.end == len(data) else data[:extent.end]), extent


def decode_jpeg(jpeg: bytes) -> np.ndarray:
    """BGR pixels of one whole JPEG; CorruptJpegError when the decoder refuses its data."""
    if simplejpeg is not None:
        try:
            return simplejpeg.decode_jpeg(jpeg, colorspace="BGR")
        except ValueError as exc:
            raise CorruptJpegError(f"corrupt JPEG frame: {exc}") from None
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise CorruptJpegError("undecodable JPEG frame")
    return image


def check_jpeg(jpeg: bytes, extent: JpegExtent) -> None:
    """Decode at 1/8 scale in grey, only to learn whether the decoder accepts every coefficient."""
    if simplejpeg is not None:
        try:
            simplejpeg.decode_jpeg(jpeg, colorspace="GRAY", min_height=max(1, extent.height // 8),
                                   min_width=max(1, extent.width // 8))
        except ValueError as exc:
            raise CorruptJpegError(f"corrupt JPEG frame: {exc}") from None
        return
    if cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_REDUCED_GRAYSCALE_8) is None:
        raise CorruptJpegError("undecodable JPEG frame")
