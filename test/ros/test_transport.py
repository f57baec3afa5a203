"""With the package's defaults, raw frames between processes arrive without loss (issue 7).

Not a timing test: a modest rate, and every frame number drawn into the pixels must arrive.
"""

import fcntl
import itertools
import os
import signal
import time
from pathlib import Path

import pytest
from helpers import NodeProcess
from sensor_msgs.msg import Image

from cam_guard.capture.synthetic import read_frame_counter
from cam_guard.ros.image_conversion import from_image_msg
from cam_guard.ros.transport import FASTDDS_CREATION_GRACE_S, image_qos, remove_orphaned_fastdds_files


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


def test_orphaned_fastdds_segments_and_ports_are_removed_and_live_ones_kept(tmp_path):
    def make(name: str, lock: str = "_el", age_s: float = 60.0) -> Path:
        path = tmp_path / name
        path.write_bytes(b"\0" * 8192)
        (tmp_path / f"{name}{lock}").touch()
        old = time.time() - age_s
        for file in (path, tmp_path / f"{name}{lock}"):
            os.utime(file, (old, old))
        return path

    orphan, live = make("fastdds_00000000deadbeef"), make("fastdds_00000000c0ffee00")
    dead_port, shared_dead_port, live_port = make("fastdds_port7411"), make("fastdds_port7400", "_sl"), \
        make("fastdds_port7413")
    (tmp_path / "sem.fastdds_port7411_mutex").touch()
    starting = make("fastdds_port7415", age_s=0.0)  # created a moment ago: its owner may not have locked it yet
    recreated = make("fastdds_port7417")
    recreated.write_bytes(b"\0" * 8192)  # Fast DDS re-creating a stale port: its lock is old and free for a moment
    held = [os.open(tmp_path / f"{path.name}_el", os.O_RDWR) for path in (live, live_port)]
    for fd in held:
        fcntl.flock(fd, fcntl.LOCK_EX)  # what a live participant does
    try:
        removed, freed = remove_orphaned_fastdds_files(str(tmp_path))
    finally:
        for fd in held:
            os.close(fd)
    assert removed == 3 and freed >= 3 * 8192
    assert {p.name for p in tmp_path.iterdir()} == {
        name + suffix for name in (live.name, live_port.name, starting.name, recreated.name) for suffix in ("", "_el")}
    assert not (tmp_path / "sem.fastdds_port7411_mutex").exists() and not dead_port.exists()
    assert not shared_dead_port.exists() and not orphan.exists()


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
        time.sleep(FASTDDS_CREATION_GRACE_S)  # younger lock files are left alone: their owner may be starting
        first.stop(signal.SIGKILL)
    assert leaked <= set(os.listdir("/dev/shm")), "a SIGKILLed participant leaves its segments behind"
    with NodeProcess("cam_guard.camera_node", {"device": "synthetic"}) as second:
        wait_until(lambda: not leaked & set(os.listdir("/dev/shm")), 20, "the next node to remove them")
        wait_until(lambda: "left by killed processes" in second.output(), 20, "the log line")
        second.stop()
