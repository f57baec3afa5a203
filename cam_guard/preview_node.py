"""preview_node: the camera with the reward overlay, on preview/image (for rqt_image_view).

Drawing happens in a thread of its own, on the newest frame, at most `max_rate` times a second on average;
frames it cannot draw in time are dropped, so the preview never slows the camera or classifier.
With no frame for `stale_after` seconds it keeps publishing the last picture, dimmed, under a
NO SIGNAL banner.
"""

import threading
import time

import cv2
from geometry_msgs.msg import Vector3Stamped
from sensor_msgs.msg import Image
from std_msgs.msg import String

from cam_guard.common.latest import LatestValue
from cam_guard.common.rate_meter import RateMeter
from cam_guard.preview.overlay import OverlayInfo, blank_frame, draw_overlay
from cam_guard.preview.pacing import DrawPacer
from cam_guard.ros.image_conversion import from_image_msg, stamp_to_ns, to_image_msg
from cam_guard.ros.runtime import GuardedNode, run_node
from cam_guard.ros.transport import image_qos, latched_qos, newest_only_subscription_qos


class PreviewNode(GuardedNode):
    def __init__(self) -> None:
        super().__init__("preview")
        image_topic = self.param("image_topic", "image_raw", "camera image to draw on")
        reward_topic = self.param("reward_topic", "reward/stamped", "reward_node's stamped output")
        state_topic = self.param("state_topic", "camera_state", "camera_node's state topic")
        self._threshold = self.param("threshold", 0.5, "threshold shown until reward messages carry one",
                                     float_range=(0.0, 1.0))
        self._stale_after = self.param("stale_after", 1.0, "seconds without a frame before NO SIGNAL",
                                       float_range=(0.05, 60.0))
        self._pacer = DrawPacer(self.param("max_rate", 30.0, "most overlays drawn per second (on average)",
                                           float_range=(0.5, 240.0)))
        self._show_window = self.param("show_window", False, "also show an OpenCV window (needs a display)")
        self._frames: LatestValue[Image] = LatestValue()
        self._reward: Vector3Stamped | None = None
        self._camera_state = "UNKNOWN"
        self._incoming = RateMeter()
        self._last_frame: Image | None = None
        self._window = self._show_window and self._open_window()
        self._pub = self.create_publisher(Image, "preview/image", image_qos("reliable"))
        self.create_subscription(Image, image_topic, self._on_image, newest_only_subscription_qos())
        self.create_subscription(Vector3Stamped, reward_topic, self._on_reward, 10)
        self.create_subscription(String, state_topic, self._on_state, latched_qos())
        self._renderer = threading.Thread(target=self._render_loop, name="preview-render", daemon=True)
        self._renderer.start()
        self.get_logger().info(f"drawing {image_topic} + {reward_topic} → {self.resolve_topic_name('preview/image')}")

    def _open_window(self) -> bool:
        try:
            cv2.namedWindow("cam_guard preview", cv2.WINDOW_NORMAL)
        except cv2.error as exc:
            self.get_logger().warning(f"no preview window ({str(exc).strip().splitlines()[-1]}); "
                                      "publishing preview/image only")
            return False
        return True

    def _on_image(self, msg: Image) -> None:
        self._incoming.add()
        self._frames.put(msg)

    def _on_reward(self, msg: Vector3Stamped) -> None:
        self._reward = msg

    def _on_state(self, msg: String) -> None:
        self._camera_state = msg.data

    def _render_loop(self) -> None:
        while not self._frames.closed:
            # Wake at least a few times per stale period so NO SIGNAL appears on time.
            msg = self._frames.take(timeout=min(0.2, self._stale_after / 2))
            if self._frames.closed:
                return
            if msg is not None:
                if not self._pacer.admit(time.monotonic()):
                    continue  # above max_rate: this frame is dropped, a later one will be drawn
                self._last_frame = msg
            elif self._last_frame is not None and self._frame_age(self._last_frame) <= self._stale_after:
                continue
            if not self.publish_while_up(lambda m=msg: self._draw(m)):
                return

    @staticmethod
    def _frame_age(msg: Image) -> float:
        return (time.time_ns() - stamp_to_ns(msg.header.stamp)) / 1e9

    def _draw(self, fresh: Image | None) -> None:
        source = fresh or self._last_frame
        frame = from_image_msg(source, "bgr8") if source is not None else blank_frame()
        reward = self._reward
        threshold = reward.vector.y if reward is not None else self._threshold
        info = OverlayInfo(probability=reward.vector.x if reward is not None else None, threshold=threshold,
                           camera_state=self._camera_state,
                           frame_age_s=self._frame_age(source) if source is not None else None,
                           fps=self._incoming.rate_hz(), stale_after_s=self._stale_after)
        overlay = draw_overlay(frame, info)
        # A drawn frame keeps its capture stamp; a NO SIGNAL picture is stamped when drawn.
        stamp_ns = stamp_to_ns(fresh.header.stamp) if fresh is not None else time.time_ns()
        frame_id = source.header.frame_id if source is not None else ""
        self._pub.publish(to_image_msg(overlay, "bgr8", stamp_ns, frame_id))
        if self._window:
            cv2.imshow("cam_guard preview", overlay)
            cv2.waitKey(1)

    def close(self) -> None:
        self._frames.close()
        self._renderer.join(timeout=2.0)
        if self._window:
            cv2.destroyAllWindows()


def main() -> None:
    raise SystemExit(run_node(PreviewNode))


if __name__ == "__main__":
    main()
