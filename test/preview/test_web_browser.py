"""The web view as a person uses it: hilserl_graph with web_port, the page in Debian's headless chromium."""

import json
import os
import re
import signal

import cv2
import numpy as np
import pytest
from helpers import NodeProcess, free_port, node_pid, web_state

from cam_guard.testing.headless_chromium import HeadlessChromium, chromium_path
from cam_guard.testing.polling import poll

pytestmark = pytest.mark.timeout(300)

PLOT_GREEN_BGR = (60, 200, 60)  # web_page.html: the probability line
THRESHOLD_BGR = (0, 176, 255)  # the threshold line
YELLOW_BGR = (0, 255, 255)  # the synthetic camera's moving block


@pytest.fixture
def browser():
    if chromium_path() is None:
        if os.geteuid() == 0:
            pytest.fail("chromium is missing although this is root: scripts/system_packages.sh installs "
                        "scripts/apt-packages.txt")
        pytest.skip("chromium is not installed and this is not root (apt-get install chromium)")
    with HeadlessChromium(1280, 860) as chromium:
        yield chromium


def pixels_near(image: np.ndarray, bgr: tuple[int, int, int], tolerance: int = 40) -> int:
    return int((np.abs(image.astype(int) - bgr).max(axis=2) <= tolerance).sum())


def element(browser: HeadlessChromium, screenshot: np.ndarray, element_id: str) -> np.ndarray:
    box = browser.evaluate(f"JSON.stringify(document.getElementById('{element_id}').getBoundingClientRect())")
    r = {k: round(v) for k, v in json.loads(box).items()}
    return screenshot[r["top"]:r["bottom"], r["left"]:r["right"]]


def text(browser: HeadlessChromium, element_id: str) -> str:
    return browser.evaluate(f"document.getElementById('{element_id}').textContent")


def test_the_page_shows_live_overlay_plot_no_signal_and_survives_a_node_restart(ros, browser, tmp_path):
    port = free_port()
    args = ["--set", "camera.device=synthetic", "--web-port", str(port)]
    with NodeProcess("cam_guard.tools.graph_launcher", args=args, env={"DISPLAY": ""}) as graph:
        poll(lambda: web_state(port), 40, "the preview node's web view")
        browser.open(f"http://127.0.0.1:{port}/")
        # Drawn: the image, and a plot of 8 s of probabilities (a line across a quarter of its width).
        browser.wait_for("camGuard.stateUpdates > 0 && document.getElementById('overlay').naturalWidth === 640 "
                         "&& camGuard.plotDraws > 0 && camGuard.history.length >= 2 "
                         "&& camGuard.history.at(-1)[0] - camGuard.history[0][0] >= 8", 60, "the image and the plot")

        # The probability text follows the classifier: the synthetic block sweeps in and out of success.
        seen: set[str] = set()
        poll(lambda: seen.add(text(browser, "probability")) or len(seen) >= 2, 30, "the probability text changing")
        assert all(re.fullmatch(r"p = \d\.\d\d", t) for t in seen), seen

        png = browser.screenshot()
        (tmp_path / "page.png").write_bytes(png)
        shot = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
        assert shot is not None and shot.std() > 20, "a blank screenshot"
        picture, plot = element(browser, shot, "overlay"), element(browser, shot, "plot")
        assert picture.std() > 20 and pixels_near(picture, YELLOW_BGR) > 200, "no camera picture in the page"
        assert pixels_near(plot, PLOT_GREEN_BGR) > 100 and pixels_near(plot, THRESHOLD_BGR) > 50, "no plot"

        # The camera node frozen: the page stays up and says NO SIGNAL; thawed, it is live again.
        camera = node_pid(graph.pid, "cam_guard.camera_node")
        os.kill(camera, signal.SIGSTOP)
        try:
            browser.wait_for("document.querySelector('.camera-state').textContent.startsWith('NO SIGNAL')", 15,
                             "NO SIGNAL on the page")
            updates = browser.evaluate("camGuard.stateUpdates")
            browser.wait_for(f"camGuard.stateUpdates > {updates} + 4 && camGuard.connected", 10, "polling on")
        finally:
            os.kill(camera, signal.SIGCONT)
        browser.wait_for("document.querySelector('.camera-state').textContent === 'STREAMING'", 30, "live again")

        # The preview node killed: hilserl_graph restarts it, the page finds it and reopens the stream.
        first_server = browser.evaluate("camGuard.serverId")
        os.kill(node_pid(graph.pid, "cam_guard.preview_node"), signal.SIGKILL)
        browser.wait_for("!camGuard.connected", 15, "the page noticing the node is gone")
        browser.wait_for(f"camGuard.connected && camGuard.serverId !== '{first_server}'", 40, "the restarted node")
        poll(lambda: (s := web_state(port)) and s["viewers"] >= 1, 15, "the page's stream on the restarted node")
        browser.wait_for("document.getElementById('overlay').naturalWidth === 640", 15, "the image again")
        code, _ = graph.stop(signal.SIGINT, timeout=10)
        output = graph.output()
    assert code == 0, output[-3000:]
    assert "Traceback" not in output, output[output.find("Traceback") - 1500:][:4000]
