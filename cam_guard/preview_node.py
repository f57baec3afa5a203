"""preview_node: the cameras with the reward overlay, on preview/image (for rqt_image_view).

Drawing happens in a thread of its own, on the newest frames, at most `max_rate` times a second on average;
frames it cannot draw in time are dropped, so the preview never slows the camera or classifier.
With several cameras the picture holds a tile per camera (cam_guard.preview.tiles). A camera with
no frame for `stale_after` seconds keeps its last picture, dimmed, under a NO SIGNAL banner. With
`web_port` set it also serves the picture and the state to browsers (cam_guard.preview.web). The
threshold line is the reward node's, carried in each reward/stamped message.
"""

import threading
import time
from functools import partial

import cv2
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import Vector3Stamped
from sensor_msgs.msg import Image
from std_msgs.msg import String

from cam_guard.common.latest import LatestValue
from cam_guard.common.rate_meter import RateMeter
from cam_guard.preview.overlay import OverlayInfo
from cam_guard.preview.pacing import DrawPacer
from cam_guard.preview.tiles import Tile, draw_cell, tile_decode_size
from cam_guard.preview.web import PreviewWeb
from cam_guard.ros import preview_parameters
from cam_guard.ros.cell import camera_label, state_topic_for
from cam_guard.ros.image_conversion import stamp_to_ns
from cam_guard.ros.image_input import ImageMessage, input_topic, subscribe_images, to_array
from cam_guard.ros.image_sender import ImageSender
from cam_guard.ros.parameters import LiveParameters
from cam_guard.ros.preview_parameters import PreviewConfig
from cam_guard.ros.runtime import ConfigError, GuardedNode, run_node
from cam_guard.ros.transport import image_qos, latched_qos

WINDOW_TITLE = "cam_guard preview"
WINDOW_CLOSED, WINDOW_OPEN, WINDOW_UNAVAILABLE = "closed", "open", "unavailable"


class PreviewNode(GuardedNode):
    def __init__(self) -> None:
        super().__init__("preview")
        self._params = LiveParameters(self, preview_parameters.PARAMETERS, preview_parameters.build, self._apply)
        config = self._params.config
        image_topics, reward_topic = config.image_topics, config.reward_topic
        self._pacer = DrawPacer(config.max_rate)
        cameras = len(image_topics)
        self._labels = [camera_label(t) for t in image_topics]
        self._arrivals: LatestValue[int] = LatestValue()  # which camera delivered last
        self._latest: list[ImageMessage | None] = [None] * cameras
        self._reward: Vector3Stamped | None = None
        self._camera_states = ["UNKNOWN"] * cameras
        self._incoming = [RateMeter() for _ in range(cameras)]
        self._window = WINDOW_CLOSED
        self._image = ImageSender(self.create_publisher(Image, "preview/image", image_qos("reliable")),
                                  self.get_logger().warning)
        for i, topic in enumerate(image_topics):
            subscribe_images(self, topic, config.transport, lambda msg, i=i: self._on_image(i, msg))
            self.create_subscription(String, state_topic_for(topic), lambda msg, i=i: self._on_state(i, msg),
                                     latched_qos())
        self.create_subscription(Vector3Stamped, reward_topic, self._on_reward, 10)
        self._web = self._serve_web(image_topics)
        self._renderer = threading.Thread(target=self._render_loop, name="preview-render", daemon=True)
        self._renderer.start()
        inputs = ", ".join(input_topic(t, config.transport) for t in image_topics)
        self.get_logger().info(f"drawing {inputs} + {reward_topic} → {self.resolve_topic_name('preview/image')}")

    def _apply(self, config: PreviewConfig, changed: frozenset[str]) -> None:
        """stale_after and show_window are read by the render thread; a new rate starts a new pacer."""
        if "max_rate" in changed:
            self._pacer = DrawPacer(config.max_rate)

    def _follow_window_setting(self) -> None:
        """Open or close the window as show_window says; in the render thread, which owns the GUI."""
        wanted = self._params.config.show_window
        if wanted and self._window == WINDOW_CLOSED:
            try:
                cv2.namedWindow(WINDOW_TITLE, cv2.WINDOW_NORMAL)
                self._window = WINDOW_OPEN
            except cv2.error as exc:
                self.get_logger().warning(f"no preview window ({str(exc).strip().splitlines()[-1]}); "
                                          "publishing preview/image only")
                self._window = WINDOW_UNAVAILABLE  # until show_window is switched off and on again
        elif not wanted and self._window != WINDOW_CLOSED:
            if self._window == WINDOW_OPEN:
                cv2.destroyWindow(WINDOW_TITLE)
            self._window = WINDOW_CLOSED

    def _serve_web(self, image_topics: list[str]) -> PreviewWeb | None:
        port, host = self._params.config.web_port, self._params.config.web_host
        if not port:
            return None
        try:
            web = PreviewWeb(host, port, [(label, self.resolve_topic_name(topic))
                                          for label, topic in zip(self._labels, image_topics, strict=True)])
        except OSError as exc:
            raise ConfigError(f"web view cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        self.create_subscription(DiagnosticArray, "/diagnostics", partial(self._on_diagnostics, web), 10)
        self.get_logger().info(f"web view on http://{host}:{port}/")
        return web

    def _on_image(self, camera: int, msg: ImageMessage) -> None:
        self._incoming[camera].add()
        self._latest[camera] = msg
        self._arrivals.put(camera)

    def _on_reward(self, msg: Vector3Stamped) -> None:
        self._reward = msg
        if self._web:
            self._web.state.reward(stamp_to_ns(msg.header.stamp) / 1e9, msg.vector.x, msg.vector.y, msg.vector.z > 0.5)

    @staticmethod
    def _on_diagnostics(web: PreviewWeb, msg: DiagnosticArray) -> None:
        for status in msg.status:
            web.state.diagnostic(status.name, ord(status.level), status.message,
                                 {kv.key: kv.value for kv in status.values}, time.time())

    def _on_state(self, camera: int, msg: String) -> None:
        self._camera_states[camera] = msg.data

    def _render_loop(self) -> None:
        while not self._arrivals.closed:
            self._follow_window_setting()
            stale_after = self._params.config.stale_after
            # Wake at least a few times per stale period so NO SIGNAL appears on time.
            camera = self._arrivals.take(timeout=min(0.2, stale_after / 2))
            if self._arrivals.closed:
                return
            # One snapshot for the whole overlay: a frame arriving while it is drawn must not put its
            # pixels under the stamp of the one that made this overlay.
            frames = list(self._latest)
            fresh = None if camera is None else frames[camera]
            if fresh is not None:
                if not self._pacer.admit(time.monotonic()):
                    continue  # above max_rate: this frame is dropped, a later one will be drawn
            elif all(m is not None and self._frame_age(m) <= stale_after for m in frames):
                continue
            if not self.publish_while_up(partial(self._draw, frames, fresh)):
                return

    @staticmethod
    def _frame_age(msg: ImageMessage) -> float:
        return (time.time_ns() - stamp_to_ns(msg.header.stamp)) / 1e9

    def _draw(self, frames: list[ImageMessage | None], fresh: ImageMessage | None) -> None:
        reward = self._reward  # its y is the reward node's threshold: the one place it is set
        probability = reward.vector.x if reward is not None else None
        threshold = reward.vector.y if reward is not None else None
        stale_after = self._params.config.stale_after
        tiles = []
        decode_size = tile_decode_size(len(frames))
        for label, msg, state, incoming in zip(self._labels, frames, self._camera_states, self._incoming, strict=True):
            info = OverlayInfo(probability=probability, threshold=threshold, camera_state=state,
                               frame_age_s=self._frame_age(msg) if msg is not None else None,
                               fps=incoming.rate_hz(), stale_after_s=stale_after)
            frame = to_array(msg, "bgr8", decode_size) if msg is not None else None
            tiles.append(Tile(label, frame, info))
        overlay = draw_cell(tiles)
        # A drawn frame keeps the capture stamp of the frame that made it; a NO SIGNAL picture is
        # stamped when drawn.
        stamp_ns = stamp_to_ns(fresh.header.stamp) if fresh is not None else time.time_ns()
        source = fresh or next((m for m in frames if m is not None), None)
        frame_id = source.header.frame_id if source is not None else ""
        self._image.send(self._image.build(overlay, "bgr8", stamp_ns, frame_id))
        if self._web:
            self._web.show(overlay, [tile.info for tile in tiles], stamp_ns / 1e9)
        if self._window == WINDOW_OPEN:
            cv2.imshow(WINDOW_TITLE, overlay)
            cv2.waitKey(1)

    def close(self) -> None:
        self._arrivals.close()
        self._renderer.join(timeout=2.0)
        if self._web:
            self._web.close()
        if self._window == WINDOW_OPEN:
            cv2.destroyAllWindows()


def main() -> None:
    raise SystemExit(run_node(PreviewNode))


if __name__ == "__main__":
    main()
