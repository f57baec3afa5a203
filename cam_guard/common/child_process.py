"""Helpers for processes cam_guard starts with exec (never fork) and must never outlive."""

import contextlib
import ctypes
import os
import signal
import threading

from cam_guard.common.startup import event_setter

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Ask the kernel to SIGKILL this process when its parent dies (Linux)."""
    # Off Linux there is no prctl: the parent still stops us by PID on every path it controls.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def stop_event_of_child() -> threading.Event:
    """For a helper process run until it is told to stop: it dies with its parent, and SIGINT or
    SIGTERM set the returned event so that it can stop in order."""
    die_with_parent()
    stop = threading.Event()
    handler = event_setter(stop)  # one for both: a SIGTERM may land while a SIGINT is being handled
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, handler)
    return stop


LAUNCHER_PID_VAR = "CAM_GUARD_LAUNCHER_PID"  # set by hilserl_graph for its nodes: their parent for sure


def die_with_starter(parent_at_start: int | None) -> None:
    """A node must not outlive the process that started it (hilserl_graph, ros2 launch, ros2 run):
    it would keep the camera open and publish on with nobody to stop it."""
    launcher = os.environ.pop(LAUNCHER_PID_VAR, None)  # our own children have their own rule
    starter = int(launcher) if launcher is not None else parent_at_start
    if starter is None:
        return
    die_with_parent()
    if os.getppid() != starter:
        os._exit(1)  # the starter died before we could ask to follow it
