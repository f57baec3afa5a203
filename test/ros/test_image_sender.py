"""Images serialised from arrays and sent outside the GIL (issue 18): what the middleware reads back,
what arrives over DDS, a refused send, and the fall-back to rclpy's publish()."""

import ctypes
import os
import signal
import threading
import time
from collections.abc import Callable
from types import SimpleNamespace

import numpy as np
import pytest
import rclpy
from helpers import publish_until, stop_child
from rclpy._rclpy_pybind11 import RCLError
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import Image

from cam_guard.ros.image_conversion import from_image_msg, to_image_msg
from cam_guard.ros.image_sender import ImageSender
from cam_guard.ros.stopped_readers import stopped_readers
from cam_guard.ros.transport import image_qos
from cam_guard.testing.harness import NodeProcess

ARRAYS = {  # odd widths and heights: every padding case of the pixel block and the strings
    "mono8": np.arange(7 * 5, dtype=np.uint8).reshape(7, 5),
    "bgr8": np.random.default_rng(1).integers(0, 255, (9, 13, 3), dtype=np.uint8),
    "rgba8": np.random.default_rng(2).integers(0, 255, (3, 3, 4), dtype=np.uint8),
    "mono16": np.arange(5 * 3, dtype=np.uint16).reshape(5, 3) * 4099,
    "32FC1": np.linspace(-1, 1, 11 * 2, dtype=np.float32).reshape(11, 2),
}


@pytest.mark.parametrize("encoding", sorted(ARRAYS))
@pytest.mark.parametrize("frame_id", ["", "a", "ab", "abc", "camera_optical"])
def test_what_is_built_is_what_the_middleware_writes_and_reads(probe, encoding, frame_id):
    sender = ImageSender(probe.node.create_publisher(Image, "/sender_format", 1))
    assert sender.serialized, sender.why_not
    image, stamp_ns = ARRAYS[encoding], 1_764_000_000_987_654_321
    built = bytes(sender.build(image, encoding, stamp_ns, frame_id))
    expected = to_image_msg(image, encoding, stamp_ns, frame_id)
    assert deserialize_message(built, Image) == expected
    assert len(built) == len(serialize_message(expected))


def test_built_images_arrive_over_dds_with_their_pixels(probe):
    received = probe.subscribe(Image, "/sender_dds")
    sender = ImageSender(probe.node.create_publisher(Image, "/sender_dds", 1))
    image = ARRAYS["bgr8"]
    publish_until(SimpleNamespace(publish=sender.send), lambda: sender.build(image, "bgr8", 1_000, "cam"), received, 3)
    msg = received.messages[-1]
    assert msg.header.frame_id == "cam" and msg.encoding == "bgr8" and msg.header.stamp.nanosec == 1_000
    np.testing.assert_array_equal(from_image_msg(msg, "passthrough"), image)


def test_a_refused_send_raises_rcl_error_with_rcl_s_reason(ros):
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node("sender_refused", context=context)
    sender = ImageSender(node.create_publisher(Image, "/sender_refused", 1))
    data = sender.build(ARRAYS["mono8"], "mono8", 0, "")
    context.handle.shutdown()  # rcl's shutdown alone, as Ctrl-C's handler does: the publisher is still there
    with pytest.raises(RCLError, match="context"):
        sender.send(data)
    node.destroy_node()


def test_without_rcl_through_ctypes_images_go_through_publish(probe, monkeypatch):
    def unreachable(*_args, **_kwargs):
        raise OSError("librcl.so: cannot open shared object file")

    monkeypatch.setattr(ctypes, "CDLL", unreachable)
    warnings: list[str] = []
    sender = ImageSender(probe.node.create_publisher(Image, "/sender_fallback", 1), warnings.append)
    assert not sender.serialized and "librcl.so" in sender.why_not
    assert len(warnings) == 1 and warnings[0].startswith("/sender_fallback: sent through rclpy's publish()")
    assert sender.why_not in warnings[0]
    built = sender.build(ARRAYS["mono8"], "mono8", 5, "x")
    assert isinstance(built, Image) and built == to_image_msg(ARRAYS["mono8"], "mono8", 5, "x")


def send_until(send: Callable[[], None], condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        send()
        time.sleep(0.05)


def ticks_per_send(send: Callable[[], None], sends: int = 10) -> float:
    """Ticks of this thread (1 ms sleeps) per send while another thread sends back to back: about one
    per send when each send holds the GIL, one per millisecond of send when it does not."""
    sender = threading.Thread(target=lambda: [send() for _ in range(sends)], daemon=True)
    ticks = 0
    deadline = time.monotonic() + 60
    sender.start()
    while sender.is_alive():
        assert time.monotonic() < deadline, f"{sends} sends still running after 60 s"
        ticks += 1
        time.sleep(0.001)
    return ticks / sends


def test_a_slow_send_leaves_the_other_threads_running(probe, tmp_path):
    """A local reader stopped for a second makes every send of a 1280x720 frame slow (Fast DDS re-creates
    its port per fragment, README); through publish() the GIL is held all that time, through the sender
    not. Compared in the same run, against the same stopped reader."""
    topic = "/sender_slow"
    publisher = probe.node.create_publisher(Image, topic, image_qos("reliable"))
    sender = ImageSender(publisher)
    frame = np.zeros((720, 1280, 3), np.uint8)

    def send() -> None:
        sender.send(sender.build(frame, "bgr8", time.time_ns(), "cam"))

    records = tmp_path / "reader.jsonl"
    with NodeProcess("cam_guard.testing.topic_recorder", args=[str(records), f"Image:{topic}"]) as reader:
        send_until(send, lambda: records.exists() and records.stat().st_size > 0, "the reader's first frame")
        stop_child(reader.pid)
        domain = int(os.environ["ROS_DOMAIN_ID"])
        send_until(send, lambda: [r.pid for r in stopped_readers(domain)] == [reader.pid],
                   "Fast DDS re-creating the stopped reader's port")
        serialized = ticks_per_send(send)
        through_publish = ticks_per_send(lambda: publisher.publish(to_image_msg(frame, "bgr8", time.time_ns(), "cam")))
        os.kill(reader.pid, signal.SIGCONT)
    report = f"ticks per slow send: {serialized:.1f} through the sender, {through_publish:.1f} through publish()"
    print(report)
    assert serialized >= 3 * max(through_publish, 1.0), report
