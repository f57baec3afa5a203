"""Stopped local readers (issue 18): found from real flocks and real stopped processes; the parsing
on sample texts; what the camera's reader check makes of them."""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from helpers import stop_child

from cam_guard.ros.publishing import ReaderLag
from cam_guard.ros.stopped_readers import StoppedReader, domain_ports, flock_holders, process_state, stopped_readers

LOCKS = """\
1: POSIX  ADVISORY  WRITE 881 00:19:1044 0 EOF
2: FLOCK  ADVISORY  WRITE 32526 00:1a:1756230 0 EOF
2: -> FLOCK  ADVISORY  WRITE 40000 00:1a:1756230 0 EOF
3: FLOCK  ADVISORY  READ 32527 fd:01:77 0 EOF
"""

# Holds a Fast DDS port as a reader does: an flock on its lock file while it lives, the port mapped.
HOLDER = """
import fcntl, mmap, os, sys, time
lock = os.open(sys.argv[1] + "_el", os.O_RDWR | os.O_CREAT)
fcntl.flock(lock, fcntl.LOCK_EX)
port = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
os.ftruncate(port, 4096)
mapping = mmap.mmap(port, 4096)
print("ready", flush=True)
time.sleep(120)
"""


def test_flock_holders_are_read_by_device_and_inode_and_waiters_hold_nothing():
    assert flock_holders(LOCKS) == {(0, 0x1a, 1756230): 32526, (0xfd, 1, 77): 32527}


def test_process_state_takes_the_name_up_to_the_last_parenthesis():
    assert process_state("4242 (ros2 (hz)) T 1 4242 4242 0 -1") == ("T", "ros2 (hz)")
    assert process_state("7 (python3) S 1 7 7") == ("S", "python3")


@contextmanager
def port_holder(shm: Path, port: int) -> Iterator[tuple[subprocess.Popen, Path]]:
    port_file = shm / f"fastdds_port{port}"
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(port_file)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        yield proc, port_file
    finally:
        os.kill(proc.pid, signal.SIGCONT)
        proc.kill()
        proc.wait(timeout=10)


def cont(pid: int) -> None:
    os.kill(pid, signal.SIGCONT)
    _, status = os.waitpid(pid, os.WCONTINUED)
    assert os.WIFCONTINUED(status)


@pytest.fixture
def shm() -> Iterator[Path]:
    """A folder on /dev/shm's tmpfs, where Fast DDS keeps its files: /proc/locks names a file by its
    file system's device, which a stacked file system (overlayfs) may not report for it."""
    folder = Path(tempfile.mkdtemp(prefix="cam_guard_test_", dir="/dev/shm"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder)


def test_a_stopped_reader_is_named_once_a_writer_replaced_its_port(shm):
    with port_holder(shm, 7411) as (proc, port_file), port_holder(shm, 7413) as (other, _):
        assert stopped_readers(0, str(shm)) == [], "running readers"
        stop_child(proc.pid)
        stop_child(other.pid)
        assert stopped_readers(0, str(shm)) == [], "stopped, but their ports are theirs still"
        port_file.unlink()  # what a writer's re-create-and-drop leaves most of the time
        found = stopped_readers(0, str(shm))
        assert [reader.pid for reader in found] == [proc.pid]
        assert found[0].name == Path(sys.executable).name[:15]
        assert stopped_readers(1, str(shm)) == [], "a port of domain 0 is no reader of domain 1"
        port_file.touch()  # re-created by the writer: the reader's mapping is still of the deleted one
        assert [reader.pid for reader in stopped_readers(0, str(shm))] == [proc.pid]
        cont(proc.pid)
        assert stopped_readers(0, str(shm)) == [], "continued"


def test_domain_ports_follow_fast_dds_numbering():
    assert domain_ports(0) == range(7400, 7650)
    assert 7400 + 250 * 97 + 11 in domain_ports(97)  # participant 0's user port in domain 97


def test_no_shm_folder_or_proc_means_none_found(tmp_path):
    assert stopped_readers(0, str(tmp_path / "absent")) == []
    assert stopped_readers(0, str(tmp_path), proc_dir=str(tmp_path / "absent")) == []


def test_the_reader_check_names_a_stopped_reader_and_warns_once_per_period():
    stopped: list[StoppedReader] = []
    logged: list[tuple[str, str]] = []
    lag = ReaderLag(list, lambda level, text: logged.append((level, text)), log_every_s=3600,
                    find_stopped=lambda: list(stopped))
    lag.check()
    assert lag.diagnostic_values(lag.check())["stopped_local_readers"] == "none"
    stopped.append(StoppedReader(4242, "ros2"))
    behind = lag.check()
    values = lag.diagnostic_values(behind)
    assert "stopped local reader" in values["readers_behind"]
    assert values["stopped_local_readers"] == "4242 (ros2)"
    lag.check()
    warnings = [text for level, text in logged if level == "warn" and "4242 (ros2) is stopped" in text]
    assert len(warnings) == 1, logged
    stopped.clear()
    assert lag.diagnostic_values(lag.check())["stopped_local_readers"] == "none"
