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
from cam_guard.reward.backends import ClassifierError, make_classifier
from cam_guard.ros import reward_parameters
from cam_guard.ros.image_conversion import ImageConversionError, from_image_msg, stamp_to_ns
from cam_guard.ros.parameters import LiveParameters
from cam_guard.ros.reward_parameters import RewardConfig
from cam_guard.ros.runtime import ConfigError, GuardedNode, run_node
from cam_guard.ros.transport import newest_only_subscription_qos


class RewardNode(GuardedNode):
    def __init__(self) -> None:
        super().__init__("reward")
        self._params = LiveParameters(self, reward_parameters.PARAMETERS, reward_parameters.build, self._apply)
        config = self._params.config
        topics = config.image_topics
        try:
            self._classifier = make_classifier(config.backend, config.model_path, config.preprocessing,
                                               config.color_rule, config.device)
        except ClassifierError as exc:
            raise ConfigError(str(exc)) from None
        if self._classifier.cameras != len(topics):
            raise ConfigError(f"the model takes {self._classifier.cameras} camera(s) but image_topics names "
                              f"{len(topics)}")
        self._backend = f"{config.backend} {config.model_path}".strip()
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
        self.get_logger().info(f"classifying {topics} with {self._backend} (threshold {config.threshold})")

    def _apply(self, config: RewardConfig, changed: frozenset[str]) -> None:
        """A live change: the threshold is read at each publish; the rule or crops are swapped in."""
        if config.backend == "color" and any(name.startswith("color.") for name in changed):
            self._classifier = config.color_rule
        if "crops" in changed and config.backend != "color":
            self._classifier.preprocessing = config.preprocessing

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
        threshold = self._params.config.threshold
        success = probability >= threshold
        self._probability_pub.publish(Float32(data=probability))
        self._success_pub.publish(Bool(data=success))
        stamped = Vector3Stamped()
        stamped.header = source.header  # the image's capture stamp: latency is measurable end to end
        stamped.vector.x, stamped.vector.y, stamped.vector.z = probability, threshold, float(success)
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
            "backend": self._backend, "threshold": f"{self._params.config.threshold:.3f}", "rate_hz": f"{rate:.2f}",
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
