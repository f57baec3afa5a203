"""Two hosts on one machine, for the tests and benchmarks that need a network between ROS processes.

`TwoHosts()` builds two network namespaces joined by a veth pair: each side has only `lo` and its
end of the pair, with an address of a private /30 (10.231.0.1 and .2) that exists nowhere else, and
a `tbf` qdisc limiting what it sends (100 Mbit by default). Each side also has its own mount and
UTS namespaces — a private tmpfs on /dev/shm and its own hostname — so Fast DDS on one side cannot
reach the other through shared memory and treats it as another machine. Processes run inside with
`host.command(argv)` or `host.popen(argv)` (nsenter into a holder process that owns the namespaces); `host.counters()`
reads the veth's byte counters, which prove that traffic crossed the link.

Everything is removed on exit, also when the body raised; namespaces left by a run that was killed
(their owner PID is gone) are removed on the next start. Needs root and iproute2 (`ip`, `tc`) and
util-linux (`unshare`, `nsenter`).
"""

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from typing import Any

# Names carry the owner's PID: "net-<pid>-a" (netns), "net<pid>a" (veth, at most 15 characters).
PREFIX = "net"
_NETNS = re.compile(rf"^{PREFIX}-(\d+)-[ab]$")
ADDRESSES = ("10.231.0.1", "10.231.0.2")
PREFIX_LEN = 30
TOOLS = ("ip", "tc", "unshare", "nsenter")
_CMD_TIMEOUT_S = 10.0


class NetnsError(RuntimeError):
    """A namespace, link or qdisc could not be set up."""


def unavailable_reason() -> str | None:
    """Why two hosts cannot be built here (None when they can)."""
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        return f"missing {', '.join(missing)} (Debian: apt-get install iproute2 util-linux)"
    return None


def _run(*argv: str, check: bool = True) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=_CMD_TIMEOUT_S, check=False)
    if check and done.returncode != 0:
        raise NetnsError(f"{' '.join(argv)}: {done.stderr.strip() or done.returncode}")
    return done.stdout


def _pid_alive(pid: int) -> bool:
    return os.path.exists(f"/proc/{pid}")


def _kill_namespace(netns: str) -> None:
    """SIGKILL every process inside `netns` (all were started in it by this module), then delete it."""
    for pid in _run("ip", "netns", "pids", netns, check=False).split():
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGKILL)
    deadline = time.monotonic() + 5
    while _run("ip", "netns", "pids", netns, check=False).split() and time.monotonic() < deadline:
        time.sleep(0.05)
    _run("ip", "netns", "del", netns, check=False)


def remove_leftovers() -> list[str]:
    """Delete namespaces of this module whose owner process is gone (a run that was killed)."""
    removed = []
    for line in _run("ip", "netns", "list", check=False).splitlines():
        name = line.split()[0] if line.split() else ""
        match = _NETNS.match(name)
        if match and not _pid_alive(int(match.group(1))):
            _kill_namespace(name)
            removed.append(name)
    return removed


@dataclass(frozen=True)
class LinkCounters:
    tx_bytes: int
    rx_bytes: int
    at: float  # time.monotonic()

    def rates_mb_s(self, later: "LinkCounters") -> tuple[float, float]:
        """(sent, received) MB/s between this reading and a later one."""
        span = max(1e-9, later.at - self.at)
        return (later.tx_bytes - self.tx_bytes) / span / 1e6, (later.rx_bytes - self.rx_bytes) / span / 1e6


class Host:
    """One side: a network namespace with its veth end, plus a holder process that owns a
    private /dev/shm and hostname; every process of this host joins the holder's namespaces."""

    def __init__(self, label: str, owner: int, address: str, peer_address: str) -> None:
        self.label = label
        self.netns = f"{PREFIX}-{owner}-{label}"
        self.veth = f"{PREFIX}{owner}{label}"
        self.hostname = f"cam-guard-{label}"
        self.address = address
        self.peer_address = peer_address
        self._holder: subprocess.Popen | None = None

    def start_holder(self) -> None:
        # `ip netns exec` gives a fresh mount namespace per call; the holder keeps one for all
        # processes of this host, so they share /dev/shm with each other but not with the other host.
        script = ("mount -t tmpfs -o mode=1777,size=2g cam_guard_shm /dev/shm && hostname \"$1\" "
                  "&& echo ready && exec sleep infinity")
        self._holder = subprocess.Popen(
            ["ip", "netns", "exec", self.netns, "unshare", "--mount", "--uts", "--propagation", "private",
             "sh", "-c", script, "holder", self.hostname],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        line = self._holder.stdout.readline() if self._holder.stdout else ""
        if line.strip() != "ready":
            self._holder.kill()
            _, err = self._holder.communicate(timeout=5)
            raise NetnsError(f"host {self.label}: namespace holder failed: {err.strip()}")

    def stop_holder(self) -> None:
        if self._holder is not None and self._holder.poll() is None:
            self._holder.kill()
            self._holder.wait(timeout=5)
        if self._holder is not None:
            for stream in (self._holder.stdout, self._holder.stderr):
                if stream is not None:
                    stream.close()
        self._holder = None

    def command(self, argv: list[str]) -> list[str]:
        """`argv` run inside this host (network, mount and UTS namespaces); its PID is argv's own."""
        if self._holder is None:
            raise NetnsError(f"host {self.label} is not running")
        return ["nsenter", f"--target={self._holder.pid}", "--net", "--mount", "--uts", "--", *argv]

    def popen(self, argv: list[str], **kwargs: Any) -> subprocess.Popen:
        """subprocess.Popen on this host (what NodeProcess's `popen` takes)."""
        return subprocess.Popen(self.command(argv), **kwargs)

    def ros_env(self, domain_id: int) -> dict[str, str]:
        """Environment for a ROS process here: discovery beyond localhost (there is only the veth),
        the other side as a static peer, and the given domain."""
        return {"ROS_DOMAIN_ID": str(domain_id), "ROS_AUTOMATIC_DISCOVERY_RANGE": "SUBNET",
                "ROS_STATIC_PEERS": self.peer_address}

    def counters(self) -> LinkCounters:
        info = json.loads(_run("ip", "-n", self.netns, "-s", "-j", "link", "show", "dev", self.veth))[0]
        stats = info["stats64"]
        return LinkCounters(stats["tx"]["bytes"], stats["rx"]["bytes"], time.monotonic())

    def set_link(self, up: bool) -> None:
        _run("ip", "-n", self.netns, "link", "set", "dev", self.veth, "up" if up else "down")


class TwoHosts(contextlib.AbstractContextManager):
    """Hosts `a` and `b` joined by a veth pair limited to `rate` in each direction.

    `queue_ms` is how much the qdisc may queue (tbf `latency`): a NIC's transmit queue.
    """

    def __init__(self, rate: str = "100mbit", queue_ms: int = 50) -> None:
        self.rate = rate
        self.queue_ms = queue_ms
        owner = os.getpid()
        self.a = Host("a", owner, ADDRESSES[0], ADDRESSES[1])
        self.b = Host("b", owner, ADDRESSES[1], ADDRESSES[0])

    def __enter__(self) -> "TwoHosts":
        reason = unavailable_reason()
        if reason:
            raise NetnsError(f"two hosts cannot be built here: {reason}")
        remove_leftovers()
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def _build(self) -> None:
        a, b = self.a, self.b
        for host in (a, b):
            _run("ip", "netns", "add", host.netns)
        _run("ip", "link", "add", a.veth, "netns", a.netns, "type", "veth", "peer", "name", b.veth, "netns", b.netns)
        for host in (a, b):
            ns = ("ip", "-n", host.netns)
            _run(*ns, "link", "set", "dev", "lo", "up")
            _run(*ns, "addr", "add", f"{host.address}/{PREFIX_LEN}", "dev", host.veth)
            _run(*ns, "link", "set", "dev", host.veth, "up")
            # DDS discovery multicast (239.255.0.1) leaves through the veth: it is the only link.
            _run(*ns, "route", "add", "224.0.0.0/4", "dev", host.veth)
            _run("tc", "-n", host.netns, "qdisc", "add", "dev", host.veth, "root", "tbf", "rate", self.rate,
                 "burst", "64kb", "latency", f"{self.queue_ms}ms")
            host.start_holder()

    def close(self) -> None:
        for host in (self.a, self.b):
            host.stop_holder()
            _kill_namespace(host.netns)  # removes its veth end, hence the pair and the qdiscs

    def __exit__(self, *_exc: object) -> None:
        self.close()
