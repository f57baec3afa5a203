"""Which processes take over Ctrl-C from their first line (pure logic; the behaviour is in test_stopping),
and a signal handler that survives a second signal arriving inside it."""

import subprocess
import sys

import pytest

from cam_guard.common.startup import EXECUTABLES, executable_module


def test_every_form_of_starting_an_executable_is_recognised():
    assert executable_module(["python3", "-m", "cam_guard.camera_node", "--ros-args"]) == "cam_guard.camera_node"
    assert executable_module(["python3", "-u", "-X", "dev", "-m", "cam_guard.capture.worker"]) \
        == "cam_guard.capture.worker"
    assert executable_module(["/usr/bin/python3", "/ws/install/cam_guard/lib/cam_guard/reward_node", "-m", "x"]) \
        == "cam_guard.reward_node"  # a console script (colcon, pip); its own '-m' argument is not Python's
    assert executable_module(["/venv/bin/python", "/venv/bin/hilserl_graph"]) == "cam_guard.tools.graph_launcher"


def test_a_program_that_only_imports_cam_guard_is_left_alone():
    assert executable_module(["python3", "train.py", "--policy", "sac"]) is None
    assert executable_module(["python3", "-c", "import cam_guard", "-m", "cam_guard.camera_node"]) is None
    assert executable_module(["python3"]) is None
    assert executable_module(["python3", "-m", "pytest"]) == "pytest"  # not one of ours: prepare_process ignores it
    assert "pytest" not in EXECUTABLES.values()


# A second interrupt lands while the first one's handler is inside Event.set(), holding its lock: what
# Ctrl-C forwarded by a launcher did to a node. Real signals; run apart, as a deadlock hangs the process.
NESTED_SIGNAL = """
import signal, threading
from cam_guard.common.startup import event_setter

class Event(threading.Event):
    nested = False

    def set(self):
        with self._cond:  # as threading.Event.set does
            self._flag = True
            if not Event.nested:
                Event.nested = True
                signal.raise_signal(signal.SIGINT)  # handled at the next bytecode, this lock held
            self._cond.notify_all()

stop = Event()
signal.signal(signal.SIGINT, event_setter(stop))
signal.raise_signal(signal.SIGINT)
print("stopped" if stop.is_set() and Event.nested else "not stopped")
"""


def test_an_interrupt_inside_the_handler_of_another_returns_at_once():
    done = subprocess.run([sys.executable, "-c", NESTED_SIGNAL], capture_output=True, text=True, timeout=30)
    assert done.stdout.strip() == "stopped", done.stderr


def test_a_plain_handler_deadlocks_there():
    """The same with `lambda *_: event.set()` (what the nodes had): the check above can fail."""
    plain = NESTED_SIGNAL.replace("event_setter(stop)", "lambda *_: stop.set()")
    with pytest.raises(subprocess.TimeoutExpired):
        subprocess.run([sys.executable, "-c", plain], capture_output=True, text=True, timeout=3)
