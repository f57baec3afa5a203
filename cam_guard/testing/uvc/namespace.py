"""A private mount namespace whose /dev is a tmpfs of its own, for device nodes the host never sees.

`unshare -m` alone would still write the host's /dev: here a tmpfs is mounted over /dev inside the
namespace first, then what programs need is bound back in (null, zero, full, random, urandom, tty,
shm, pts, mqueue; fd and std* links). A holder process keeps the namespace alive; this process reaches
the namespace's /dev only through a directory fd taken after checking it is that tmpfs, so a file made
here cannot land in the host's /dev even if the holder dies. Programs run inside via nsenter, which
execs them in place: the PID the caller gets is the program's own, and SIGKILL by PID ends it.
Needs root (CAP_SYS_ADMIN), util-linux's unshare and nsenter.
"""

import contextlib
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from typing import Any

# Runs as the namespace's holder: stdin stays open while the owning process lives, so the holder
# (and with it the namespace) also goes when a test run is killed outright.
_SETUP = r"""
set -eu
stage="$1"
mount --rbind /dev "$stage"  # recursive: /dev/shm and /dev/pts are mounts of their own
mount -t tmpfs -o mode=0755,nosuid,size=4m cam_guard-dev /dev
for node in null zero full random urandom tty; do
    if [ -e "$stage/$node" ]; then : > "/dev/$node"; mount --bind "$stage/$node" "/dev/$node"; fi
done
for dir in shm pts mqueue; do
    if [ -d "$stage/$dir" ]; then mkdir "/dev/$dir"; mount --bind "$stage/$dir" "/dev/$dir"; fi
done
ln -s pts/ptmx /dev/ptmx
ln -s /proc/self/fd /dev/fd
ln -s /proc/self/fd/0 /dev/stdin
ln -s /proc/self/fd/1 /dev/stdout
ln -s /proc/self/fd/2 /dev/stderr
umount -l "$stage"
echo ready
read -r _ || true
"""


class NamespaceError(RuntimeError):
    pass


class DevNamespace:
    """Start with `start()` or `with`; `popen()` runs programs inside; `mkfifo()`/`symlink()`/`unlink()`
    change its /dev (paths relative to /dev); `close()` SIGKILLs every process inside, then the holder."""

    def __init__(self) -> None:
        self._holder: subprocess.Popen[bytes] | None = None
        self._stage: str | None = None
        self._dev_fd = -1  # the namespace's /dev, opened through the holder's root
        self._ns_fd = -1  # the namespace itself, for nsenter
        self._ns_ino = 0
        self._procs: list[subprocess.Popen[Any]] = []

    # -- lifecycle -----------------------------------------------------------------------------------
    def start(self, timeout: float = 10.0) -> "DevNamespace":
        for tool in ("unshare", "nsenter", "mount"):
            if shutil.which(tool) is None:
                raise NamespaceError(f"'{tool}' (util-linux) is needed for a private /dev")
        self._stage = tempfile.mkdtemp(prefix="cam_guard-devns-")
        self._holder = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", _SETUP, "sh", self._stage],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            self._await_ready(timeout)
            self._pin_namespace()
        except BaseException:
            self.close()
            raise
        return self

    def _await_ready(self, timeout: float) -> None:
        assert self._holder is not None and self._holder.stdout is not None
        ready, _, _ = select.select([self._holder.stdout], [], [], timeout)
        line = self._holder.stdout.readline() if ready else b""
        if line.strip() != b"ready":
            self._holder.kill()
            _, err = self._holder.communicate(timeout=5)
            raise NamespaceError(f"private /dev did not come up: {err.decode(errors='replace').strip()}")

    def _pin_namespace(self) -> None:
        assert self._holder is not None
        root = f"/proc/{self._holder.pid}/root/dev"
        dev_fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        if os.fstat(dev_fd).st_dev == os.stat("/dev").st_dev:
            os.close(dev_fd)
            raise NamespaceError("the namespace's /dev is the host's: refusing to create device nodes")
        self._dev_fd = dev_fd
        self._ns_fd = os.open(f"/proc/{self._holder.pid}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
        self._ns_ino = os.fstat(self._ns_fd).st_ino

    def close(self) -> None:
        self.kill_all()
        if self._holder is not None:
            with contextlib.suppress(ProcessLookupError):
                self._holder.kill()
            self._holder.communicate(timeout=5)
            self._holder = None
        for fd in (self._dev_fd, self._ns_fd):
            if fd >= 0:
                os.close(fd)
        self._dev_fd = self._ns_fd = -1
        if self._stage is not None:
            with contextlib.suppress(OSError):
                os.rmdir(self._stage)
            self._stage = None

    def __enter__(self) -> "DevNamespace":
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- processes -----------------------------------------------------------------------------------
    def wrap(self, cmd: Sequence[str], cwd: str | None = None) -> list[str]:
        """`cmd` as a command line that runs it inside the namespace (same PID, same cwd)."""
        if self._ns_fd < 0:
            raise NamespaceError("namespace not started")
        return ["nsenter", f"--mount=/proc/{os.getpid()}/fd/{self._ns_fd}", f"--wd={cwd or os.getcwd()}", "--",
                *cmd]

    def popen(self, cmd: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: str | None = None,
              **kwargs: Any) -> "subprocess.Popen[Any]":
        """Start `cmd` inside; it is SIGKILLed by PID at `close()` if still running."""
        proc = subprocess.Popen(self.wrap(cmd, cwd), env=dict(env) if env is not None else None, **kwargs)
        self._procs.append(proc)
        return proc

    def pids(self) -> list[int]:
        """Every process inside the namespace but the holder (children of popen()'s programs too)."""
        found = []
        holder = self._holder.pid if self._holder else -1
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == holder:
                continue
            with contextlib.suppress(OSError):
                if os.stat(f"/proc/{entry}/ns/mnt").st_ino == self._ns_ino:
                    found.append(int(entry))
        return found

    def kill_all(self, timeout: float = 5.0) -> None:
        """SIGKILL every process inside (by PID), reap the ones started here, wait for the rest to go."""
        if self._ns_ino:
            for pid in self.pids():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + timeout
        for proc in self._procs:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        self._procs.clear()
        while self._ns_ino and self.pids() and time.monotonic() < deadline:
            time.sleep(0.02)  # grandchildren: their parents reap them; nothing to wait on here

    # -- the namespace's /dev ------------------------------------------------------------------------
    def _dir(self) -> int:
        if self._dev_fd < 0:
            raise NamespaceError("namespace not started")
        return self._dev_fd

    def makedirs(self, path: str) -> None:
        parts = path.strip("/").split("/")
        for i in range(1, len(parts) + 1):
            with contextlib.suppress(FileExistsError):
                os.mkdir("/".join(parts[:i]), 0o755, dir_fd=self._dir())

    def mkfifo(self, path: str, mode: int = 0o666) -> None:
        os.mkfifo(path, mode, dir_fd=self._dir())
        os.chmod(path, mode, dir_fd=self._dir())  # past the umask: like a udev rule's MODE

    def symlink(self, target: str, path: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path, dir_fd=self._dir())
        os.symlink(target, path, dir_fd=self._dir())

    def unlink(self, path: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path, dir_fd=self._dir())

    def open(self, path: str, flags: int) -> int:
        return os.open(path, flags, dir_fd=self._dir())

    def listdir(self, path: str = ".") -> list[str]:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY, dir_fd=self._dir())
        try:
            return os.listdir(fd)
        finally:
            os.close(fd)
