"""JPEG frames as cameras send them: padding after EOI accepted, truncated and corrupt frames refused."""

import struct

import cv2
import numpy as np
import pytest

from cam_guard.capture.jpeg import (
    CorruptJpegError,
    TruncatedJpegError,
    camera_jpeg,
    check_jpeg,
    decode_jpeg,
    jpeg_extent,
)
from cam_guard.capture.synthetic import read_frame_counter, synthetic_frame
from cam_guard.testing.fault_injection import scramble_entropy_data


def encode(index: int = 3, *params: int) -> bytes:
    return cv2.imencode(".jpg", synthetic_frame(index, 320, 240), list(params))[1].tobytes()


def with_app_segment(jpeg: bytes, payload: bytes) -> bytes:
    """`jpeg` with an APP1 segment after SOI, as an EXIF block with a thumbnail would add."""
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


@pytest.mark.parametrize("params", [(), (cv2.IMWRITE_JPEG_PROGRESSIVE, 1), (cv2.IMWRITE_JPEG_RST_INTERVAL, 4)],
                         ids=["baseline", "progressive", "restart-markers"])
@pytest.mark.parametrize("padding", [b"", b"\0" * 3, b"\0" * 1040, b"\xff" * 64, bytes(range(256)) * 2],
                         ids=["none", "pi-4-byte", "uvc-zero-fill", "ff-fill", "arbitrary"])
def test_padding_after_eoi_is_cut_off_and_the_frame_decodes(params, padding):
    jpeg = encode(3, *params)
    trimmed, extent = camera_jpeg(jpeg + padding)
    assert trimmed == jpeg
    assert (extent.end, extent.width, extent.height) == (len(jpeg), 320, 240)
    assert read_frame_counter(decode_jpeg(trimmed)) == 3
    check_jpeg(trimmed, extent)


def test_the_images_own_eoi_ends_it_not_one_in_stale_padding_or_a_thumbnail():
    # ESP32-CAM firmware leaves stale DMA bytes after EOI: pieces of earlier frames, EOI markers included.
    jpeg = with_app_segment(encode(7), b"Exif\0\0" + encode(1)[:600] + b"\xff\xd9")  # a thumbnail's own EOI
    stale = encode(6)
    trimmed, _ = camera_jpeg(jpeg + stale[-5000:])
    assert trimmed == jpeg
    assert read_frame_counter(decode_jpeg(trimmed)) == 7


def test_every_cut_short_frame_is_truncated():
    jpeg = encode(2, cv2.IMWRITE_JPEG_RST_INTERVAL, 2)
    for cut in [*range(0, 700, 7), *range(700, len(jpeg) - 1, 97), len(jpeg) - 2, len(jpeg) - 1]:
        with pytest.raises((TruncatedJpegError, CorruptJpegError)):
            jpeg_extent(jpeg[:cut])
        if cut >= 2:
            with pytest.raises(TruncatedJpegError):
                jpeg_extent(jpeg[:cut] + b"\xff" * (cut % 3 == 0))  # a trailing fill byte changes nothing


@pytest.mark.parametrize("data", [b"", b"\xff\xd8", b"GIF89a" + b"\0" * 100, bytes(1000)], ids=repr)
def test_what_is_not_a_jpeg_is_corrupt(data):
    with pytest.raises((CorruptJpegError, TruncatedJpegError)):
        jpeg_extent(data)


def test_broken_structure_is_corrupt():
    jpeg = encode()
    with pytest.raises(CorruptJpegError, match="no marker"):
        jpeg_extent(jpeg[:2] + b"\x12" + jpeg[2:])
    with pytest.raises(CorruptJpegError, match="before any image data"):
        jpeg_extent(b"\xff\xd8\xff\xd9" + jpeg)


def test_scrambled_frames_from_the_fault_server_are_refused():
    jpeg = encode(4)
    for seed in range(100):
        scrambled = scramble_entropy_data(jpeg, np.random.default_rng(seed))
        with pytest.raises(ValueError):
            trimmed, extent = camera_jpeg(scrambled)
            check_jpeg(trimmed, extent)


def test_noise_that_keeps_the_marker_structure_is_refused_by_the_full_decode_and_the_cheap_check():
    jpeg = encode(4)
    scan = jpeg.index(b"\xff\xda") + 20
    for seed in range(30):
        # Noise without 0xFF bytes: no marker appears in it, so the structure walk cannot tell.
        noise = np.random.default_rng(seed).integers(0, 255, 1500, dtype=np.uint8).tobytes()
        scrambled = jpeg[:scan] + noise + jpeg[scan + 1500:]
        trimmed, extent = camera_jpeg(scrambled)
        with pytest.raises(CorruptJpegError):
            decode_jpeg(trimmed)
        with pytest.raises(CorruptJpegError):
            check_jpeg(trimmed, extent)
