"""Proof, at run time, that no cam_guard process forks a Python interpreter.

With CAM_GUARD_FORK_AUDIT=<file> set, every cam_guard process records any os.fork() it performs
(multiprocessing's fork start method included) in that file. subprocess's fork+exec is done in C
and is not recorded: an exec'd child shares no threads or locks with its parent.
"""

import os
import sys
import traceback

ENV_VAR = "CAM_GUARD_FORK_AUDIT"


def install_from_env() -> None:
    path = os.environ.get(ENV_VAR)
    if not path:
        return

    def record() -> None:
        with open(path, "a") as f:
            f.write(f"pid {os.getpid()} ({' '.join(sys.argv)}) forked:\n")
            f.write("".join(traceback.format_stack()) + "\n")

    os.register_at_fork(before=record)
