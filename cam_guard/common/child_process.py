"""Helpers for processes cam_guard starts with exec (never fork) and must never outlive."""

import contextlib
import ctypes
import os
import signal

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Ask the kernel to SIGKILL this process when its parent dies (Linux)."""
    # Off Linux there is no prctl: the parent still stops us by PID on every path it controls.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


LAUNCHER_PID_VAR = "CAM_GUARD_LAUNCHER_PID"


def die_with_launcher() -> None:
    """A node started by hilserl_graph must not outlive it: it would keep the camera open and
    publish on with nobody to stop it. (Nodes started by ros2 launch keep ROS's usual behaviour.)"""
    launcher = os.environ.pop(LAUNCHER_PID_VAR, None)  # our own children have their own rule
    if launcher is None:
        return
    die_with_parent()
    if os.getppid() != int(launcher):
        os._exit(1)  # the launcher died before we could ask to follow it
