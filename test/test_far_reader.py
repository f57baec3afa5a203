"""Issue 18: a reader that cannot keep up gets fewer frames; it never slows the camera or its other readers
(except a reader stopped on the camera's host: Fast DDS's known limit, which the camera names in its diagnostics).

Two hosts made inside the test (cam_guard.testing.netns: network namespaces, a veth pair limited to
100 Mbit, a private /dev/shm and hostname each, discovery only over that link). camera_node at
1280x720 / 30 fps MJPEG on A with two local raw readers; a compressed reader on B. Each phase is
compared with a baseline of the same run (ratios, not wall times): a raw reader on B, that reader
stopped, a local reader stopped. Both hosts share this machine's cores, so the far reader's own work
(and anything else running) takes CPU from the camera. The camera and its compressed topic are held
to the issue's 0.95x (they kept 0.99-1.00x in every run since image_raw is sent outside the GIL); the
other bounds leave room for the shared cores (before the fix the camera fell to a fifth of its rate and
local latency rose by 300 ms). The figures against the
issue's goals (>= 0.95x, 28 fps, p95 within 2 ms) are in bench/RESULTS.md (bench/far_reader.py).
"""

import os
import signal

import pytest

from cam_guard.testing.harness import NodeProcess
from cam_guard.testing.two_hosts import TwoHostRig

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="two hosts need root (network namespaces)")

DOMAIN = 150 + os.getpid() % 50
RAW, COMPRESSED = "/image_raw", "/image_raw/compressed"


def start_camera(rig: TwoHostRig, **env: str) -> tuple[NodeProcess, NodeProcess]:
    """camera_node on A, its readers on both hosts, once frames arrive on both; returns it and a local reader."""
    a, b = rig.net.a, rig.net.b
    url = rig.start_mjpeg(a)
    camera = rig.start_node(a, "cam_guard.camera_node", {"device": url, "width": 1280, "height": 720}, env=env)
    rig.start_recorder(a, "local", [f"Image:{RAW}", "DiagnosticArray:/diagnostics"])
    stoppable = rig.start_recorder(a, "local_stoppable", [f"Image:{RAW}"])
    rig.start_recorder(b, "far_compressed", [f"CompressedImage:{COMPRESSED}"])
    rig.wait_records("far_compressed", COMPRESSED, 30, timeout=60)
    rig.wait_records("local", RAW, 30, timeout=30)
    return camera, stoppable


def wait_readers(rig: TwoHostRig, count: int) -> None:
    """Until the camera's diagnostics count `count` image_raw readers (discovery across the link)."""
    rig.wait_for("local", lambda r: any(v.get("image_raw.readers") == str(count) for v in r.get("status", {}).values()),
                 timeout=30, what=f"{count} image_raw readers in the camera's diagnostics")


def test_far_raw_reader_and_stopped_readers_slow_nobody():
    with TwoHostRig(DOMAIN) as rig:
        _, local_stoppable = start_camera(rig)
        base = rig.window(4)
        far_raw = rig.start_recorder(rig.net.b, "far_raw", [f"Image:{RAW}"])
        wait_readers(rig, 3)
        phases = {"far raw reader": rig.window(5)}
        os.kill(far_raw.pid, signal.SIGSTOP)
        phases["far reader stopped"] = rig.window(5)
        os.kill(far_raw.pid, signal.SIGCONT)
        far_raw.stop(timeout=15)  # a clean exit unmatches it at once (a killed one stays until its lease ends)
        os.kill(local_stoppable.pid, signal.SIGSTOP)
        phases["local reader stopped"] = rig.window(5)
        os.kill(local_stoppable.pid, signal.SIGCONT)

        def row(window):
            local = rig.stats("local", RAW, window)
            return (rig.published_hz("local", window), local.fps, local.latency_ms_p95,
                    rig.stats("far_compressed", COMPRESSED, window).fps, rig.stats("far_raw", RAW, window).fps,
                    window.link_mb_s)

        published, local_fps, local_p95, far_fps, _, base_link = row(base)
        report = {name: row(window) for name, window in phases.items()}
        print(f"baseline: {row(base)}\n" + "\n".join(f"{name}: {values}" for name, values in report.items()))
        for name, (pub, fps, p95, far, _far_raw, _link) in report.items():
            # The camera and its compressed topic: 0.90-0.92x with a stopped local reader while rclpy's
            # publish() held the GIL for image_raw's send, 1.00x since (bench/RESULTS.md).
            assert pub >= 0.95 * published, f"{name}: camera published {pub:.1f}/s, {published:.1f}/s without"
            assert far >= 0.95 * far_fps, f"{name}: compressed at B got {far:.1f} fps, {far_fps:.1f} without"
            assert fps >= 0.5 * local_fps, f"{name}: local reader got {fps:.1f} fps, {local_fps:.1f} without"
            # A stopped local reader is the known Fast DDS limit (README): the writer re-creates its port
            # between the fragments it sends the other reader, +30 to +66 ms measured.
            slack = 120 if name == "local reader stopped" else 50
            assert p95 <= 2 * local_p95 + slack, f"{name}: local latency p95 {p95:.1f} ms, {local_p95:.1f} without"
        assert report["far raw reader"][5] > base_link + 1.0, "the far raw reader's traffic must cross the link"
        behind = rig.diagnostic_values("local", phases["far raw reader"], "readers_behind")
        assert any("network" in (b or "") for b in behind), f"the camera must say a reader is behind: {behind}"
        stopped = rig.diagnostic_values("local", phases["local reader stopped"], "stopped_local_readers")
        assert any(str(local_stoppable.pid) in (s or "") for s in stopped), \
            f"the camera must name the stopped reader {local_stoppable.pid}: {stopped}"
        assert rig.diagnostic_values("local", phases["far reader stopped"], "stopped_local_readers") == {"none"}, \
            "a reader stopped on another host costs this one nothing over shared memory"
        publish_p95 = [v.get("image_raw.publish_ms_p95") for r in rig.records("local") if r["topic"] == "/diagnostics"
                       for v in r["status"].values()]
        assert publish_p95 and all(p is not None for p in publish_p95), "diagnostics report publish time per topic"


def test_asynchronous_publication_mode_survives_a_far_raw_reader():
    """It made the node exit 3 ('cannot publish data') before the sends became non-blocking."""
    with TwoHostRig(DOMAIN) as rig:
        camera, _ = start_camera(rig, RMW_FASTRTPS_PUBLICATION_MODE="ASYNCHRONOUS")
        base = rig.window(3)
        rig.start_recorder(rig.net.b, "far_raw", [f"Image:{RAW}"])
        wait_readers(rig, 3)
        far = rig.window(5)
        assert camera.proc.poll() is None, camera.output()[-2000:]
        published, with_far = rig.published_hz("local", base), rig.published_hz("local", far)
        assert with_far >= 0.5 * published, f"camera published {with_far:.1f}/s, {published:.1f}/s without"
        compressed = [rig.stats("far_compressed", COMPRESSED, w).fps for w in (base, far)]
        assert compressed[1] >= 0.5 * compressed[0], f"compressed at B: {compressed[1]:.1f} fps, {compressed[0]:.1f}"
