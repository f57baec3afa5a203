"""With the package's defaults, raw frames between processes arrive without loss (issue 7).

Not a timing test: a modest rate, and every frame number drawn into the pixels must arrive.
"""

import itertools

import pytest
from helpers import NodeProcess
from sensor_msgs.msg import Image

from cam_guard.image_conversion import from_image_msg
from cam_guard.synthetic import read_frame_counter
from cam_guard.transport import image_qos


@pytest.mark.parametrize(("width", "height"), [(640, 480), (1280, 720)])
@pytest.mark.parametrize("qos", ["sensor_data", "reliable"])
def test_every_raw_frame_arrives_with_the_shipped_profile(probe, width, height, qos):
    images = probe.subscribe(Image, "/image_raw", image_qos(qos))
    with NodeProcess("cam_guard.camera_node", {"device": "synthetic", "width": width, "height": height,
                                               "fps": 10.0, "qos": qos}) as node:
        images.wait_count(5, timeout=20)
        images.clear()
        images.wait_count(30, timeout=20)
        node.stop()
    counters = [read_frame_counter(from_image_msg(m)) for m in images.messages]
    gaps = [b - a for a, b in itertools.pairwise(counters)]
    assert set(gaps) == {1}, f"frames lost or repeated: gaps {sorted(set(gaps))}"
