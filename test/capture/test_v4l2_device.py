"""Why a V4L2 open failed, asked of the kernel: the paths a machine without cameras can show.
(Busy, not-a-capture-node and format answers are tested against the emulated UVC camera.)"""

import subprocess
import sys

from cam_guard.capture.v4l2_device import explain_open_failure, holders


def test_a_missing_device_is_gone(tmp_path):
    assert explain_open_failure(str(tmp_path / "video7"), "MJPG").startswith("gone: ")


def test_something_that_is_not_a_v4l2_device_says_so():
    assert explain_open_failure("/dev/null", "MJPG").startswith("not a V4L2 device: /dev/null")


def test_holders_names_the_process_that_has_the_file_open(tmp_path):
    path = tmp_path / "device"
    path.write_bytes(b"")
    holder = subprocess.Popen([sys.executable, "-c", f"f = open({str(path)!r}); print('open', flush=True); input()"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "open\n"
        found = holders(str(path))
    finally:
        holder.kill()
        holder.wait(timeout=5)
    assert len(found) == 1 and found[0].startswith(f"pid {holder.pid} ({sys.executable} -c f = open("), found
    assert holders(str(path)) == []
