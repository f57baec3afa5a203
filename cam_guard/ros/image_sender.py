"""Publishing sensor_msgs/Image from arrays without holding the GIL while the middleware sends (issue 18).

rclpy's `publish()` keeps the GIL for the whole send, and a send can take long: to a local reader
stopped for more than a second, Fast DDS 3.2 re-creates that reader's shared-memory port for every
64 KB fragment, about 30 ms per 1280x720 frame, and every other thread of the node (the frame
hand-off from the capture worker, image_raw/compressed, camera_info, diagnostics) waited as long.
Here the image is serialised in Python straight from the array (plain CDR, little endian: what
rmw_fastrtps writes for sensor_msgs/Image) and handed to rcl's `rcl_publish_serialized_message`
through ctypes, which releases the GIL for the call. It is also one copy of the pixels fewer than
through an Image message (bench/RESULTS.md).

The format is checked once per publisher against the middleware's own deserialiser; where it does
not hold (another middleware, another rclpy), images go through `publish()` as before.
"""

import ctypes
import os
import struct
from collections.abc import Callable
from typing import Any

import numpy as np
from rclpy._rclpy_pybind11 import RCLError
from rclpy.publisher import Publisher
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import Image

from cam_guard.ros.image_conversion import ImageLayout, image_layout, to_image_msg

CDR_LE = b"\x00\x01\x00\x00"  # encapsulation header: plain CDR, little endian, no options
_RCUTILS_ERROR_MESSAGE_MAX_LENGTH = 1024


class _Allocator(ctypes.Structure):  # rcutils_allocator_t
    _fields_ = [(name, ctypes.c_void_p) for name in ("allocate", "deallocate", "reallocate", "zero_allocate",
                                                     "state")]


class _SerializedMessage(ctypes.Structure):  # rcl_serialized_message_t (rcutils_uint8_array_t)
    _fields_ = [("buffer", ctypes.c_void_p), ("buffer_length", ctypes.c_size_t),
                ("buffer_capacity", ctypes.c_size_t), ("allocator", _Allocator)]


class _ErrorString(ctypes.Structure):  # rcutils_error_string_t
    _fields_ = [("str", ctypes.c_char * _RCUTILS_ERROR_MESSAGE_MAX_LENGTH)]


def _cdr_string(text: str) -> bytes:
    data = text.encode() + b"\0"
    return struct.pack("<I", len(data)) + data


def _aligned(body: bytes) -> bytes:
    """`body` padded with zeros to a multiple of 4: CDR aligns each 4-byte field to 4 from the body's start."""
    return body + bytes(-len(body) % 4)


def _image_cdr_header(layout: ImageLayout, encoding: str, stamp_ns: int, frame_id: str, size: int) -> bytes:
    """Everything of a serialised sensor_msgs/Image before its `size` bytes of pixels."""
    sec, nanosec = divmod(stamp_ns, 1_000_000_000)
    body = _aligned(struct.pack("<iI", sec, nanosec) + _cdr_string(frame_id))
    body += struct.pack("<II", layout.height, layout.width) + _cdr_string(encoding)
    body += struct.pack("<B", layout.is_bigendian)
    return CDR_LE + _aligned(body) + struct.pack("<II", layout.step, size)


class ImageSender:
    """Builds and publishes sensor_msgs/Image from arrays on `publisher`, serialised and outside the
    GIL where the check allows (`serialized`), as an Image message through rclpy where not.

    `build` reuses one buffer: call `build` and `send` in turn, from one thread (a topic's publishing
    thread does). The middleware has copied the data when `send` returns.
    """

    def __init__(self, publisher: Publisher, warn: Callable[[str], Any] | None = None) -> None:
        """`warn` is told once when images go through `publish()`, and why."""
        self._publisher = publisher
        self._buffer = bytearray()
        try:
            rcl = ctypes.CDLL("librcl.so", mode=os.RTLD_NOLOAD)  # loaded with rclpy: found, not loaded again
            rcutils = ctypes.CDLL("librcutils.so", mode=os.RTLD_NOLOAD)
            self._publish_serialized = rcl.rcl_publish_serialized_message
            self._publish_serialized.argtypes = [ctypes.c_void_p, ctypes.POINTER(_SerializedMessage), ctypes.c_void_p]
            self._publish_serialized.restype = ctypes.c_int
            self._error_string = rcutils.rcutils_get_error_string
            self._error_string.restype = _ErrorString
            self._reset_error = rcutils.rcutils_reset_error
            self.why_not = self._format_check()
        except (OSError, AttributeError) as exc:
            self.why_not = f"rcl not reachable through ctypes: {exc}"
        self.serialized = self.why_not == ""
        if not self.serialized and warn is not None:
            warn(f"{publisher.topic_name}: sent through rclpy's publish(), which holds the GIL while the "
                 f"middleware sends ({self.why_not})")

    def _format_check(self) -> str:
        """'' when what `build` writes is what the middleware writes and reads back, else why not."""
        probe, stamp_ns = np.arange(3 * 5 * 3, dtype=np.uint8).reshape(3, 5, 3), 1_700_000_000_123_456_789
        expected = to_image_msg(probe, "bgr8", stamp_ns, "probe")
        ours = bytes(self._serialize(probe, "bgr8", stamp_ns, "probe"))
        try:
            same = deserialize_message(ours, Image) == expected and len(ours) == len(serialize_message(expected))
        except Exception as exc:  # the middleware's deserialiser rejected it, whatever its error type
            return f"the middleware does not read this serialisation: {exc}"
        return "" if same else "the middleware serialises sensor_msgs/Image differently"

    def _serialize(self, image: np.ndarray, encoding: str, stamp_ns: int, frame_id: str) -> bytearray:
        pixels = np.ascontiguousarray(image).reshape(-1).view(np.uint8)
        header = _image_cdr_header(image_layout(image, encoding), encoding, stamp_ns, frame_id, pixels.size)
        size = len(header) + pixels.size
        if len(self._buffer) != size:
            self._buffer = bytearray(size)
        self._buffer[:len(header)] = header
        np.copyto(np.frombuffer(self._buffer, np.uint8, count=pixels.size, offset=len(header)), pixels)
        return self._buffer

    def build(self, image: np.ndarray, encoding: str, stamp_ns: int, frame_id: str) -> bytearray | Image:
        if not self.serialized:
            return to_image_msg(image, encoding, stamp_ns, frame_id)
        return self._serialize(image, encoding, stamp_ns, frame_id)

    def send(self, data: bytearray | Image) -> None:
        """Publish what `build` returned; RCLError when the middleware refuses it, as `publish()`."""
        if isinstance(data, Image):
            self._publisher.publish(data)
            return
        buffer = (ctypes.c_char * len(data)).from_buffer(data)  # no copy: rcl reads the bytearray itself
        message = _SerializedMessage(ctypes.addressof(buffer), len(data), len(data))
        with self._publisher.handle:
            ret = self._publish_serialized(self._publisher.handle.pointer, ctypes.byref(message), None)
        if ret != 0:
            error = self._error_string().str.decode(errors="replace")
            self._reset_error()
            raise RCLError(f"Failed to publish: {error}")
