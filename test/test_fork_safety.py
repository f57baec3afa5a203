"""The original bug class, reproduced, and proof that cam_guard never forks a threaded interpreter."""

import ast
import multiprocessing
import threading
from pathlib import Path

import cv2
from helpers import NodeProcess
from sensor_msgs.msg import Image

from cam_guard.testing.fault_injection import MjpegFaultServer

ROOT = Path(__file__).resolve().parents[1]
# Everything that ships or runs as the project; test/ is left out because this file forks on purpose.
PROJECT_DIRS = ("cam_guard", "bench", "launch", "scripts", "lerobot_plugin")
CHILD_TIMEOUT_S = 6.0
TRIALS = 3


def _fork_uses(path: Path) -> list[str]:
    """Calls that fork a Python interpreter: os.fork/forkpty, the 'fork' start method,
    and multiprocessing.Process/Pool used without an explicit context (fork on Linux ≤3.13)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        owner = getattr(func.value, "id", "") if isinstance(func, ast.Attribute) else ""
        args = [a.value for a in node.args if isinstance(a, ast.Constant)]
        if (owner, name) in (("os", "fork"), ("os", "forkpty"), ("multiprocessing", "Process"),
                             ("multiprocessing", "Pool")) or (
                name in ("get_context", "set_start_method") and ("fork" in args or "forkserver" in args)):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno} {owner + '.' if owner else ''}{name}")
    return found


def test_no_project_code_forks():
    offenders = [use for d in PROJECT_DIRS for p in (ROOT / d).rglob("*.py") for use in _fork_uses(p)]
    assert offenders == []


def test_the_check_catches_forks(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import os, multiprocessing\nos.fork()\nmultiprocessing.get_context('fork')\n"
                   "multiprocessing.Process(target=print)\n")
    global ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        assert len(_fork_uses(bad)) == 3
    finally:
        ROOT = saved


def _open_camera(url: str) -> None:
    cap = cv2.VideoCapture(url, cv2.CAP_FFMPEG, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, 3000])
    cap.release()


def _hung_children(start_method: str, stalled: MjpegFaultServer, healthy_url: str) -> int:
    """Trials in which a child opening a healthy camera hung while a parent thread sat in an open."""
    hung = 0
    ctx = multiprocessing.get_context(start_method)
    for _ in range(TRIALS):
        stalled.request_seen.clear()
        opener = threading.Thread(target=_open_camera, args=(stalled.url,))
        opener.start()
        # The stalled server has answered the request: the thread is now inside FFmpeg's open.
        assert stalled.request_seen.wait(timeout=10)
        child = ctx.Process(target=_open_camera, args=(healthy_url,))
        child.start()
        child.join(timeout=CHILD_TIMEOUT_S)
        if child.is_alive():
            hung += 1
            child.kill()
            child.join(timeout=5)
        opener.join(timeout=10)
    return hung


def test_fork_while_a_thread_opens_a_camera_hangs_the_child_but_spawn_does_not():
    with MjpegFaultServer(160, 120, 30) as stalled, MjpegFaultServer(160, 120, 30) as healthy:
        stalled.stall()
        forked = _hung_children("fork", stalled, healthy.url)
        spawned = _hung_children("spawn", stalled, healthy.url)
    assert spawned == 0
    assert forked >= 1, "the original bug no longer reproduces: revisit this test's premise"


def test_camera_node_and_its_workers_never_fork(probe, tmp_path):
    audit = tmp_path / "forks.log"
    images = probe.subscribe(Image, "/image_raw")
    with MjpegFaultServer(320, 240, 30) as server, NodeProcess(
            "cam_guard.camera_node", {"device": server.url, "width": 320, "height": 240},
            env={"CAM_GUARD_FORK_AUDIT": str(audit)}) as node:
        images.wait_count(5, timeout=20)
        server.drop()  # forces a worker replacement
        images.wait_count(len(images.items) + 5, timeout=10)
        code, _ = node.stop()
    assert code == 0
    assert not audit.exists(), audit.read_text()


def test_fork_audit_records_a_fork(tmp_path):
    import os
    import subprocess
    import sys

    audit = tmp_path / "forks.log"
    code = ("from cam_guard.common import fork_audit; fork_audit.install_from_env(); import os\n"
            "pid = os.fork()\nos._exit(0) if pid == 0 else os.waitpid(pid, 0)\n")
    subprocess.run([sys.executable, "-c", code], env={**os.environ, "CAM_GUARD_FORK_AUDIT": str(audit)},
                   check=True, timeout=30)
    assert "forked" in audit.read_text()
