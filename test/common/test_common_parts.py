"""Frame ring, newest-only mailbox, rate meter: no ROS."""

import os
import threading

import numpy as np
import pytest

from cam_guard.common.frame_ring import FrameRing, RewardSample, Status, remove_stale_rings, shm_dir
from cam_guard.common.latest import LatestValue
from cam_guard.common.lines import LineSplitter


@pytest.fixture
def ring_path():
    path = os.path.join(shm_dir(), f"cam_guard-test-{os.getpid()}-{threading.get_ident()}")
    yield path
    if os.path.exists(path):
        os.unlink(path)


def test_frame_ring_hands_the_newest_frame_between_mappings(ring_path):
    writer = FrameRing.create(ring_path, pixel_capacity=48, jpeg_capacity=16)
    reader = FrameRing.attach(ring_path)
    assert reader.read_latest() is None and reader.latest_seq() == 0
    image = np.arange(48, dtype=np.uint8).reshape(4, 4, 3)
    assert writer.write(np.zeros((4, 4, 3), np.uint8), None, 10) == 1
    assert writer.write(image, b"\xff\xd8jpeg\xff\xd9", 20) == 2
    frame = reader.read_latest()
    assert (frame.seq, frame.stamp_ns, frame.jpeg) == (2, 20, b"\xff\xd8jpeg\xff\xd9")
    np.testing.assert_array_equal(frame.image, image)
    assert reader.read(1).stamp_ns == 10 and reader.read(1).jpeg is None


def test_frame_ring_detects_a_reused_slot(ring_path):
    writer = FrameRing.create(ring_path, pixel_capacity=12, slots=2)
    reader = FrameRing.attach(ring_path)
    frame = np.zeros((2, 2, 3), np.uint8)
    first = writer.write(frame)
    writer.write(frame)
    writer.write(frame)  # lands in the first frame's slot
    assert reader.read(first) is None
    assert reader.read_latest().seq == 3


def test_frame_ring_refuses_oversized_frames_and_drops_oversized_jpeg(ring_path):
    writer = FrameRing.create(ring_path, pixel_capacity=12, jpeg_capacity=4)
    with pytest.raises(ValueError, match="exceeds"):
        writer.write(np.zeros((3, 3, 3), np.uint8))
    seq = writer.write(np.zeros((2, 2, 3), np.uint8), b"12345")
    assert writer.read(seq).jpeg is None


def test_frame_ring_carries_jpeg_only_frames_with_their_size(ring_path):
    writer = FrameRing.create(ring_path, pixel_capacity=48, jpeg_capacity=16)
    seq = writer.write_jpeg_only(b"\xff\xd8jpeg\xff\xd9", 4, 4, 30)
    frame = FrameRing.attach(ring_path).read(seq)
    assert (frame.image, frame.jpeg, frame.width, frame.height) == (None, b"\xff\xd8jpeg\xff\xd9", 4, 4)
    with pytest.raises(ValueError, match="exceeds"):  # its pixels would not fit once decoding resumes
        writer.write_jpeg_only(b"\xff\xd8\xff\xd9", 5, 4)
    with pytest.raises(ValueError, match="exceeds"):
        writer.write_jpeg_only(bytes(17), 4, 4)


def test_frame_ring_status_and_reward_blocks(ring_path):
    writer = FrameRing.create(ring_path, pixel_capacity=0)
    reader = FrameRing.attach(ring_path)
    assert reader.status() == Status("", "") and reader.reward() is None
    reconnecting = Status("RECONNECTING", "no frame for 0.50 s", "STALLED", 42, "gone: /dev/video0 (unplugged?)")
    writer.set_status(reconnecting)
    writer.set_reward(RewardSample(0.75, 0.5, True, 123))
    assert reader.status() == reconnecting
    assert reader.reward() == RewardSample(0.75, 0.5, True, 123)
    writer.set_status(Status("x" * 100, "y" * 500, "z" * 100, 2**64 - 1, "w" * 900))  # truncated, never overflowing
    assert reader.status() == Status("x" * 32, "y" * 160, "z" * 32, 2**64 - 1, "w" * 400)
    assert reader.reward().stamp_ns == 123


def test_latest_value_keeps_only_the_newest_and_counts_drops():
    box: LatestValue[int] = LatestValue()
    for i in range(5):
        box.put(i)
    assert box.take(timeout=0.1) == 4
    assert box.dropped == 4 and box.received == 5
    assert box.take(timeout=0.01) is None
    box.close()
    assert box.take(timeout=5) is None and box.closed


def test_stale_rings_of_dead_processes_are_removed():
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True, timeout=30)
    stale = os.path.join(shm_dir(), f"cam_guard-capture-{dead.stdout.strip()}-1")
    live = os.path.join(shm_dir(), f"cam_guard-capture-{os.getpid()}-99")
    for path in (stale, live):
        FrameRing.create(path, pixel_capacity=0).close()
    try:
        removed = remove_stale_rings()
        assert os.path.basename(stale) in removed and not os.path.exists(stale)
        assert os.path.exists(live)
    finally:
        for path in (stale, live):
            if os.path.exists(path):
                os.unlink(path)


def test_rate_meter_counts_only_its_window():
    from cam_guard.common.rate_meter import RateMeter

    meter = RateMeter(window_s=2.0)
    for i in range(61):  # 30 Hz for 2 s, values 0..60
        meter.add(float(i), now=100.0 + i / 30)
    assert meter.rate_hz(now=102.0) == pytest.approx(30.0)
    assert meter.percentile(50, now=102.0) == pytest.approx(30.0)
    assert meter.rate_hz(now=110.0) == 0.0  # everything aged out


def test_lines_arriving_in_pieces_are_joined():
    splitter = LineSplitter()
    assert splitter.feed(b"[tcp @ 0x1] Conn") == []
    assert splitter.feed(b"ection refused\nsecond\nthi") == ["[tcp @ 0x1] Connection refused", "second"]
    assert splitter.feed(b"x" * 5000) == ["thi" + "x" * 5000]
