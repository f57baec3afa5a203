"""reward_node: success probability of the newest camera frame(s), for rqt_plot and the trainer.

Image callbacks only store the newest message; one inference thread classifies the newest set,
so a slow model drops frames (counted) instead of queueing them.
"""

import threading
import time

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import Vector3Stamped
from sensor_msgs.msg import Image
from std_msgs.msg import Bool, Float32

from cam_guard.common.latest import LatestValue
from cam_guard.common.rate_meter import RateMeter
from cam_guard.reward.backends import ClassifierError, ColorRuleClassifier, Preprocessing, make_classifier
from cam_guard.ros.image_conversion import ImageConversionError, from_image_msg, stamp_to_ns
from cam_guard.ros.runtime import ConfigError, GuardedNode, run_node
from cam_guard.ros.transport import newest_only_subscription_qos

BACKENDS = ("color", "onnx", "lerobot")


def parse_crops(entries: list[str]) -> list[tuple[int, int, int, int] | None]:
    """'top,left,height,width' per camera ('' = no crop), LeRobot's crop_params_dict order."""
    crops: list[tuple[int, int, int, int] | None] = []
    for entry in entries:
        if not entry.strip():
            crops.append(None)
            continue
        parts = entry.split(",")
        if len(parts) != 4 or not all(p.strip().isdigit() for p in parts):
            raise ConfigError(f"crop '{entry}' must be 'top,left,height,width' in pixels")
        top, left, height, width = (int(p) for p in parts)
        crops.append((top, left, height, width))
    return crops


class RewardNode(GuardedNode):
    def __init__(self) -> None:
        super().__init__("reward")
        topics = [t for t in self.param("image_topics", ["image_raw"], "camera image topics, in model order") if t]
        backend = self.param("backend", "color", "classifier backend", choices=BACKENDS)
        model_path = self.param("model_path", "", "ONNX file or LeRobot checkpoint directory")
        self._threshold = self.param("threshold", 0.5, "success when probability >= threshold",
                                     float_range=(0.0, 1.0))
        resize = self.param("resize_size", [128, 128], "model input height, width")
        crops = parse_crops(self.param("crops", [""], "per camera 'top,left,height,width' or ''"))
        device = self.param("device", "cpu", "torch device for the lerobot backend")
        color = ColorRuleClassifier(
            hsv_low=tuple(self.param("color.hsv_low", [25, 200, 200], "HSV lower bound (OpenCV scale)")),
            hsv_high=tuple(self.param("color.hsv_high", [35, 255, 255], "HSV upper bound")),
            roi=tuple(self.param("color.roi", [0.5, 0.0, 0.5, 1.0], "x, y, width, height as fractions")),
            full_share=self.param("color.full_share", 0.01, "pixel share that means probability 1",
                                  float_range=(1e-4, 1.0)),
        ) if backend == "color" else None
        if not topics:
            raise ConfigError("image_topics is empty")
        if len(resize) != 2 or min(resize) < 8:
            raise ConfigError(f"resize_size {list(resize)} must be [height, width], each >= 8")
        try:
            self._classifier = make_classifier(backend, model_path, Preprocessing((resize[0], resize[1]), crops),
                                               color, device)
        except ClassifierError as exc:
            raise ConfigError(str(exc)) from None
        if self._classifier.cameras != len(topics):
            raise ConfigError(f"the model takes {self._classifier.cameras} camera(s) but image_topics names "
                              f"{len(topics)}")
        self._backend = f"{backend} {model_path}".strip()
        self._latest_images: list[Image | None] = [None] * len(topics)
        self._newest: LatestValue[int] = LatestValue()  # wakes the inference thread per primary frame
        self._inference_ms = RateMeter(window_s=5.0)
        self._end_to_end_ms = RateMeter(window_s=5.0)
        self._errors = 0
        self._last_error = ""
        self._probability_pub = self.create_publisher(Float32, "reward/probability", 10)
        self._success_pub = self.create_publisher(Bool, "reward/success", 10)
        self._stamped_pub = self.create_publisher(Vector3Stamped, "reward/stamped", 10)
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        for index, topic in enumerate(topics):
            self.create_subscription(Image, topic, lambda msg, i=index: self._on_image(i, msg),
                                     newest_only_subscription_qos())
        self._worker = threading.Thread(target=self._classify_loop, name="reward-inference", daemon=True)
        self._worker.start()
        self.create_timer(1.0, self._publish_diagnostics)
        self.get_logger().info(f"classifying {topics} with {self._backend} (threshold {self._threshold})")

    def _on_image(self, camera: int, msg: Image) -> None:
        self._latest_images[camera] = msg
        if camera == 0:
            self._newest.put(stamp_to_ns(msg.header.stamp))

    def _classify_loop(self) -> None:
        while not self._newest.closed:
            if self._newest.take(timeout=0.2) is None:
                continue
            messages = list(self._latest_images)
            if any(m is None for m in messages):
                continue  # another camera has not delivered yet
            started = time.monotonic()
            try:
                images = [from_image_msg(m, "rgb8") for m in messages]
                probability = float(self._classifier.predict(images))
            except (ImageConversionError, ClassifierError, ValueError, RuntimeError) as exc:
                self._errors += 1
                if str(exc) != self._last_error:  # log each new failure once, count the rest
                    self.get_logger().error(f"classification failed: {exc}")
                self._last_error = str(exc)
                continue
            self._last_error = ""  # diagnostics report the current failure, `errors` keeps the count
            self._inference_ms.add((time.monotonic() - started) * 1000)
            if not self.publish_while_up(lambda m=messages[0], p=probability: self._publish(m, p)):
                return

    def _publish(self, source: Image, probability: float) -> None:
        success = probability >= self._threshold
        self._probability_pub.publish(Float32(data=probability))
        self._success_pub.publish(Bool(data=success))
        stamped = Vector3Stamped()
        stamped.header = source.header  # the image's capture stamp: latency is measurable end to end
        stamped.vector.x, stamped.vector.y, stamped.vector.z = probability, self._threshold, float(success)
        self._stamped_pub.publish(stamped)
        self._end_to_end_ms.add((time.time_ns() - stamp_to_ns(source.header.stamp)) / 1e6)

    def _publish_diagnostics(self) -> None:
        rate = self._inference_ms.rate_hz()
        if self._last_error:
            level, message = DiagnosticStatus.ERROR, f"classification failing: {self._last_error}"
        elif rate == 0.0:
            level, message = DiagnosticStatus.WARN, "waiting for images"
        else:
            level, message = DiagnosticStatus.OK, f"classifying at {rate:.1f} Hz"
        values = {
            "backend": self._backend, "threshold": f"{self._threshold:.3f}", "rate_hz": f"{rate:.2f}",
            "inference_ms_p50": f"{self._inference_ms.percentile(50):.2f}",
            "inference_ms_p95": f"{self._inference_ms.percentile(95):.2f}",
            "capture_to_reward_ms_p50": f"{self._end_to_end_ms.percentile(50):.2f}",
            "capture_to_reward_ms_p95": f"{self._end_to_end_ms.percentile(95):.2f}",
            "frames_received": str(self._newest.received), "frames_dropped": str(self._newest.dropped),
            "errors": str(self._errors),
        }
        status = DiagnosticStatus(level=level, name=f"cam_guard: {self.get_fully_qualified_name()}",
                                  message=message, hardware_id=self._backend,
                                  values=[KeyValue(key=k, value=v) for k, v in values.items()])
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self._diag_pub.publish(array)

    def close(self) -> None:
        self._newest.close()
        self._worker.join(timeout=2.0)


def main() -> None:
    raise SystemExit(run_node(RewardNode))


if __name__ == "__main__":
    main()
