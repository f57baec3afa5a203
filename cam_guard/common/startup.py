"""Ctrl-C and SIGTERM from an executable's very first line, and children that start deaf to them.

A terminal's Ctrl-C reaches every process of the group at once, often while a node is still
importing OpenCV or rclpy: Python's default handler would print a KeyboardInterrupt traceback
from the middle of an import. `cam_guard/__init__.py` calls `prepare_process()` first thing; when
this process *is* a cam_guard executable (never when a program merely imports cam_guard, such as
a trainer using the LeRobot plugin), an interrupt while it is still importing ends it at once with
exit code 0 (nothing outside the process exists yet; raising an exception there is no option: an
import of a C extension turns it into an ImportError with a traceback). From `mark_started()` on,
an interrupt only sets `stop_requested`: the main loop stops at its next check and tears down in
order; a second Ctrl-C changes nothing. Capture workers ignore SIGINT: their node stops them.

Processes cam_guard starts are started with both signals blocked (`deferred_interrupts`), so a
Ctrl-C that arrives while the child interpreter is still starting waits until `prepare_process`
has installed its handler instead of meeting Python's default one.
"""

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence

# Console script -> module; a process running either form is a cam_guard executable.
EXECUTABLES = {
    "camera_node": "cam_guard.camera_node",
    "reward_node": "cam_guard.reward_node",
    "preview_node": "cam_guard.preview_node",
    "hilserl_graph": "cam_guard.tools.graph_launcher",
    "cam_guard_hz": "cam_guard.tools.topic_hz",
}
WORKER_MODULES = ("cam_guard.capture.worker",)
INTERRUPTS = (signal.SIGINT, signal.SIGTERM)
_OPTIONS_WITH_VALUE = ("-X", "-W")

stop_requested = threading.Event()
_started = False
parent_at_start: int | None = None  # the process that started us, recorded before anything else ran


def executable_module(argv: Sequence[str]) -> str | None:
    """The cam_guard module this interpreter command line runs (`python -m cam_guard.x` or a
    console script `.../camera_node`), or None."""
    args = iter(argv[1:])
    for arg in args:
        if arg == "-m":
            return next(args, None)
        if arg in _OPTIONS_WITH_VALUE:
            next(args, None)
        elif arg == "-c":
            return None
        elif not arg.startswith("-"):
            return EXECUTABLES.get(os.path.basename(arg))
    return None


def event_setter(event: threading.Event) -> Callable[[int, object], None]:
    """A signal handler that sets `event`, safe to nest. Python runs a handler between two bytecodes of
    the main thread, also those of a handler already running: Ctrl-C reaches a node twice (from the
    terminal, and forwarded by its launcher), and the second run of the handler waited forever for the
    lock that `Event.set()` of the first still held (a node that never stopped: SIGKILLed after 5 s).
    A nested call returns at once: the event is being set."""
    busy = False

    def handler(_signum: int, _frame: object) -> None:
        nonlocal busy
        if busy:
            return
        busy = True
        try:
            event.set()
        finally:
            busy = False

    return handler


_request_stop = event_setter(stop_requested)


def _on_interrupt(signum: int, frame: object) -> None:
    _request_stop(signum, frame)
    if not _started:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(0)


def prepare_process(argv: Sequence[str] | None = None) -> None:
    global parent_at_start
    module = executable_module(sys.orig_argv if argv is None else argv)
    if module in WORKER_MODULES:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    elif module in EXECUTABLES.values():
        for sig in INTERRUPTS:
            signal.signal(sig, _on_interrupt)
    else:
        return
    parent_at_start = os.getppid()
    signal.pthread_sigmask(signal.SIG_UNBLOCK, INTERRUPTS)


def mark_started() -> None:
    """From now on an interrupt asks the main loop to stop (see `stop_requested`) instead of exiting:
    called once the imports are done, before anything that must be undone (DDS, workers) exists."""
    global _started
    _started = True


@contextlib.contextmanager
def deferred_interrupts() -> Iterator[None]:
    """Block SIGINT/SIGTERM in this thread (a child started meanwhile inherits the block, which its
    `prepare_process` lifts); a signal that arrives meanwhile is delivered afterwards."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, INTERRUPTS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
