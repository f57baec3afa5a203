"""Per-frame costs inside one process (issue 6): JPEG decode, Image conversion, publishing.

    python bench/frame_costs.py [--repeat 200]

Each figure is the median over `repeat` runs, with its ratio to the baseline of its group:
- decode: cv2.imdecode (the camera worker's choice) vs simplejpeg (libjpeg-turbo, if installed)
  and cv2's reduced-size decode;
- hand-off: to_image_msg + publish (Image), to_compressed_msg + publish (CompressedImage), against
  writing and reading the same bytes through a shared-memory FrameRing (the raw IPC baseline).
A subscriber process is attached, so publish() does its real work.
"""

import argparse
import os
import time

import _common  # noqa: F401  (sets the ROS environment first)
import cv2
import numpy as np
import rclpy
from _common import machine, table
from sensor_msgs.msg import CompressedImage, Image

from cam_guard.capture.synthetic import synthetic_frame
from cam_guard.common.frame_ring import FrameRing, ring_path
from cam_guard.ros.image_conversion import from_image_msg, to_compressed_msg, to_image_msg
from cam_guard.ros.transport import apply_fastdds_profile, image_qos
from cam_guard.testing.harness import NodeProcess


def median_ms(fn, repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return float(np.median(times) * 1000)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    try:
        import simplejpeg
    except ImportError:
        simplejpeg = None
    apply_fastdds_profile()
    rclpy.init()
    node = rclpy.create_node("frame_costs")
    image_pub = node.create_publisher(Image, "bench/image", image_qos("reliable"))
    jpeg_pub = node.create_publisher(CompressedImage, "bench/compressed", image_qos("reliable"))
    rows = []
    # A listener in another process, so publish() serialises and delivers for real.
    with NodeProcess("cam_guard.preview_node", {"image_topics": ["/bench/image"]}) as listener:
        deadline = time.monotonic() + 20
        while image_pub.get_subscription_count() == 0 and time.monotonic() < deadline:
            rclpy.spin_once(node, timeout_sec=0.1)
        for width, height in ((640, 480), (1280, 720), (1920, 1080)):
            frame = synthetic_frame(7, width, height)
            jpeg = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 85])[1]
            size = f"{width}x{height}"
            base = median_ms(lambda j=jpeg: cv2.imdecode(j, cv2.IMREAD_COLOR), args.repeat)
            rows.append([size, "decode", "cv2.imdecode (baseline)", base, 1.0])
            half = median_ms(lambda j=jpeg: cv2.imdecode(j, cv2.IMREAD_REDUCED_COLOR_2), args.repeat)
            rows.append([size, "decode", "cv2.imdecode at half size", half, half / base])
            if simplejpeg is not None:
                raw = jpeg.tobytes()
                sj = median_ms(lambda r=raw: simplejpeg.decode_jpeg(r, colorspace="BGR"), args.repeat)
                rows.append([size, "decode", "simplejpeg.decode_jpeg", sj, sj / base])
            path = ring_path("bench", width)
            ring = FrameRing.create(path, frame.nbytes)
            try:
                shm = median_ms(lambda f=frame, r=ring: r.read(r.write(f)), args.repeat)
            finally:
                ring.close()
                os.unlink(path)
            rows.append([size, "hand-off", "FrameRing write + read (baseline)", shm, 1.0])
            conv = median_ms(lambda f=frame: to_image_msg(f, "bgr8"), args.repeat)
            rows.append([size, "hand-off", "to_image_msg only", conv, conv / shm])
            pub = median_ms(lambda f=frame: image_pub.publish(to_image_msg(f, "bgr8")), args.repeat)
            rows.append([size, "hand-off", "to_image_msg + publish Image", pub, pub / shm])
            back = to_image_msg(frame, "bgr8")
            view = median_ms(lambda m=back: from_image_msg(m), args.repeat)
            rows.append([size, "hand-off", "from_image_msg (zero-copy view)", view, view / shm])
            raw = jpeg.tobytes()
            cpub = median_ms(lambda r=raw: jpeg_pub.publish(to_compressed_msg(r)), args.repeat)
            rows.append([size, "hand-off", f"publish CompressedImage ({len(raw) // 1024} KiB)", cpub, cpub / shm])
            for row in rows[-7:]:
                print(row, flush=True)
        listener.stop()
    node.destroy_node()
    rclpy.shutdown()
    print(f"\n{machine()}; median of {args.repeat} runs\n")
    print(table(["size", "group", "operation", "ms per frame", "× baseline"], rows))


if __name__ == "__main__":
    main()
