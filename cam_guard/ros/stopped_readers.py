"""Stopped local readers: processes on this host, stopped (SIGSTOP, Ctrl-Z, a debugger), that DDS
writers are sending to over Fast DDS shared memory (issue 18).

Such a reader costs every writer that sends to it, and so every other reader of that writer's topics:
after a second without an answer Fast DDS (3.2) declares the reader's shared-memory port unhealthy,
and from then on the writer re-creates the port for every message fragment it sends there and drops
it again (64 KB fragments: about 43 per 1280x720 frame, 20-30 ms of CPU). No setting of the writer's
changes that (README, "No reader can slow the camera"); the operator can: continue or end that process.
This module finds it, from what the kernel shows of Fast DDS's files:

- each reader's port `fastdds_port<N>` in /dev/shm has a lock file `fastdds_port<N>_el` on which the
  reader holds an flock while it lives (/proc/locks names the holder's PID);
- the holder is stopped when /proc/<pid>/stat says `T` (stopped) or `t` (stopped by a tracer);
- only the ports of the node's own ROS domain count (Fast DDS numbers them by domain);
- a writer has replaced that port when the reader's own mapping of it shows the file deleted
  (/proc/<pid>/maps: `... /dev/shm/fastdds_port<N> (deleted)`). A stopped reader that no writer
  sends to keeps its port.
"""

import contextlib
import os
import re
from dataclasses import dataclass

_PORT_LOCK = re.compile(r"^fastdds_port(\d{1,5})_el$")
STOPPED_STATES = ("T", "t")


@dataclass(frozen=True)
class StoppedReader:
    pid: int
    name: str  # the process's command name (comm), as `ps` shows it

    def __str__(self) -> str:
        return f"{self.pid} ({self.name})"


def flock_holders(locks: str) -> dict[tuple[int, int, int], int]:
    """(major, minor, inode) -> PID of each flock held, from the text of /proc/locks. Waiters (the
    `->` lines) hold nothing."""
    holders = {}
    for line in locks.splitlines():
        fields = line.split()
        if len(fields) < 6 or fields[1] != "FLOCK":
            continue
        try:
            major, minor, inode = fields[5].split(":")
            holders[(int(major, 16), int(minor, 16), int(inode))] = int(fields[4])
        except ValueError:
            continue
    return holders


def process_state(stat: str) -> tuple[str, str]:
    """(state letter, command name) from the text of /proc/<pid>/stat; the name may hold spaces and
    parentheses, so it runs to the last ')'."""
    name, _, rest = stat.partition("(")[2].rpartition(")")
    return rest.split()[0], name


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            return file.read()
    except OSError:
        return None


def domain_ports(domain_id: int) -> range:
    """The ports Fast DDS gives a domain's participants (RTPS's 7400 + 250 × domain, 250 of them); a
    shared-memory port is named after its locator's port."""
    return range(7400 + 250 * domain_id, 7400 + 250 * (domain_id + 1))


def stopped_readers(domain_id: int, shm_dir: str = "/dev/shm", proc_dir: str = "/proc") -> list[StoppedReader]:
    """The stopped processes of ROS domain `domain_id` whose Fast DDS shared-memory port a writer on
    this host has replaced (module doc), each once, by PID. Processes whose /proc entries this one may
    not read (another user's, without root) are not seen."""
    locks = _read(os.path.join(proc_dir, "locks"))
    if locks is None:
        return []
    holders = flock_holders(locks)
    ports = domain_ports(domain_id)
    found: dict[int, StoppedReader] = {}
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(shm_dir):
            match = _PORT_LOCK.match(entry.name)
            if match is None or int(match[1]) not in ports:
                continue
            try:
                lock = entry.stat()
            except FileNotFoundError:
                continue
            pid = holders.get((os.major(lock.st_dev), os.minor(lock.st_dev), lock.st_ino))
            if pid is None or pid in found:
                continue
            stat = _read(os.path.join(proc_dir, str(pid), "stat"))
            if stat is None:
                continue
            state, name = process_state(stat)
            maps = _read(os.path.join(proc_dir, str(pid), "maps")) if state in STOPPED_STATES else None
            if maps is not None and f"{os.path.join(shm_dir, entry.name[:-3])} (deleted)\n" in maps:
                found[pid] = StoppedReader(pid, name)
    return sorted(found.values(), key=lambda reader: reader.pid)
