"""Two hosts on one machine (cam_guard.testing.netns): only the veth joins them, and nothing is left behind."""

import os
import subprocess
import sys

import pytest

from cam_guard.testing.netns import PREFIX, TwoHosts, remove_leftovers

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root")


def namespaces() -> set[str]:
    return {line.split()[0] for line in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                                                       check=True).stdout.splitlines() if line.strip()}


def run_in(host, code: str) -> str:
    return subprocess.run(host.command([sys.executable, "-c", code]), capture_output=True, text=True, timeout=20,
                          check=True).stdout


def test_two_hosts_talk_only_over_their_link_and_share_no_memory():
    with TwoHosts() as net:
        a, b = net.a, net.b
        links = run_in(a, "import os; print(sorted(os.listdir('/sys/class/net')))").strip()
        assert links == str(sorted(["lo", a.veth]))
        assert run_in(b, "import socket; print(socket.gethostname())").strip() == b.hostname != a.hostname
        run_in(a, "open('/dev/shm/cam_guard_netns_probe', 'w').close()")
        assert "cam_guard_netns_probe" not in run_in(b, "import os; print(os.listdir('/dev/shm'))")
        assert not os.path.exists("/dev/shm/cam_guard_netns_probe"), "nothing lands in this machine's /dev/shm"
        before = a.counters()
        receiver = subprocess.Popen(b.command([sys.executable, "-c", (
            "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('0.0.0.0', 9999));"
            "s.settimeout(10); print('ready', flush=True); print(len(s.recv(65536)))")]),
            stdout=subprocess.PIPE, text=True)
        assert receiver.stdout.readline().strip() == "ready"
        run_in(a, f"import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x' * 50000, "
                  f"('{b.address}', 9999))")
        assert receiver.communicate(timeout=15)[0].strip() == "50000"
        sent = a.counters().tx_bytes - before.tx_bytes
        assert sent >= 50000, f"the veth counted {sent} bytes"
        names = {a.netns, b.netns}
        assert names <= namespaces()
    assert not names & namespaces()


def test_everything_is_removed_when_the_body_fails_and_leftovers_of_killed_runs_too():
    with pytest.raises(RuntimeError, match="test body failed"), TwoHosts() as net:
        names = {net.a.netns, net.b.netns}
        raise RuntimeError("test body failed")
    assert not names & namespaces()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True).stdout.strip()
    leftover = f"{PREFIX}-{dead}-a"
    subprocess.run(["ip", "netns", "add", leftover], check=True)
    assert leftover in remove_leftovers()
    assert leftover not in namespaces()
