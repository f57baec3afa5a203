"""With the package's defaults, raw frames between processes arrive without loss (issue 7).

Not a timing test: a modest rate, and every frame number drawn into the pixels must arrive.
"""

import fcntl
import itertools
import os
import signal
import time

import pytest
from helpers import NodeProcess
from sensor_msgs.msg import Image

from cam_guard.capture.synthetic import read_frame_counter
from cam_guard.ros.image_conversion import from_image_msg
from cam_guard.ros.transport import image_qos, remove_orphaned_fastdds_segments


@pytest.mark.parametrize(("width", "height"), [(640, 480), (1280, 720)])
@pytest.mark.parametrize("qos", ["sensor_data", "reliable"])
def test_every_raw_frame_arrives_with_the_shipped_profile(probe, width, height, qos):
    images = probe.subscribe(Image, "/image_raw", image_qos(qos))
    with NodeProcess("cam_guard.camera_node", {"device": "synthetic", "width": width, "height": height,
                                               "fps": 10.0, "qos": qos}) as node:
        images.wait_count(5, timeout=20)
        images.clear()
        images.wait_count(30, timeout=20)
        node.stop()
    counters = [read_frame_counter(from_image_msg(m)) for m in images.messages]
    gaps = [b - a for a, b in itertools.pairwise(counters)]
    assert set(gaps) == {1}, f"frames lost or repeated: gaps {sorted(set(gaps))}"


def test_orphaned_fastdds_segments_are_removed_and_live_ones_kept(tmp_path):
    orphan, live = tmp_path / "fastdds_00000000deadbeef", tmp_path / "fastdds_00000000c0ffee00"
    port = tmp_path / "fastdds_port7000"
    for path in (orphan, live, port):
        path.write_bytes(b"\0" * 8192)
        (tmp_path / f"{path.name}_el").touch()
    held = os.open(tmp_path / f"{live.name}_el", os.O_RDWR)
    fcntl.flock(held, fcntl.LOCK_EX)  # what a live participant does
    try:
        removed, _ = remove_orphaned_fastdds_segments(str(tmp_path))
    finally:
        os.close(held)
    assert removed == 1
    assert not orphan.exists() and not (tmp_path / f"{orphan.name}_el").exists()
    assert live.exists() and port.exists(), "live segments and Fast DDS's port files are left alone"


def new_segments(before: set[str]) -> set[str]:
    return {n for n in set(os.listdir("/dev/shm")) - before if n.startswith("fastdds_") and "port" not in n}


def wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)  # polling a directory: there is no event to wait on


def test_a_killed_nodes_segments_are_cleaned_by_the_next_node(ros):
    before = set(os.listdir("/dev/shm"))
    with NodeProcess("cam_guard.camera_node", {"device": "synthetic"}) as first:
        wait_until(lambda: any(n.endswith("_el") for n in new_segments(before)), 20, "the node's segments")
        leaked = new_segments(before)
        first.stop(signal.SIGKILL)
    assert leaked <= set(os.listdir("/dev/shm")), "a SIGKILLed participant leaves its segments behind"
    with NodeProcess("cam_guard.camera_node", {"device": "synthetic"}) as second:
        wait_until(lambda: not leaked & set(os.listdir("/dev/shm")), 20, "the next node to remove them")
        wait_until(lambda: "left by killed processes" in second.output(), 20, "the log line")
        second.stop()
