"""reward_node: success probability of the newest camera frame(s), for rqt_plot and the trainer.

Image callbacks only store frames (a few per camera); one inference thread classifies the newest
set of frames taken at the same moment (cam_guard.reward.grouping), so a slow model drops frames
(counted) instead of queueing them, and a stalled camera stops the reward and is named on
reward/state instead of its old frame being classified beside new ones.
"""

import os
import sys
import threading
import time

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import Vector3Stamped
from std_msgs.msg import Bool, Float32, String

from cam_guard.common.rate_meter import RateMeter
from cam_guard.reward.backends import ClassifierError, make_classifier
from cam_guard.reward.grouping import AUTO, CLASSIFYING, FrameGrouper, FrameSet, reward_state
from cam_guard.reward.success import is_success
from cam_guard.ros import reward_parameters
from cam_guard.ros.cell import camera_label, state_topic_for
from cam_guard.ros.image_conversion import ImageConversionError, stamp_to_ns
from cam_guard.ros.image_input import ImageMessage, input_topic, subscribe_images, to_array
from cam_guard.ros.parameters import LiveParameters
from cam_guard.ros.reward_parameters import RewardConfig
from cam_guard.ros.runtime import ConfigError, GuardedNode, run_node
from cam_guard.ros.transport import latched_qos


class RewardNode(GuardedNode):
    def __init__(self) -> None:
        super().__init__("reward")
        self._params = LiveParameters(self, reward_parameters.PARAMETERS, reward_parameters.build, self._apply)
        config = self._params.config
        topics = config.image_topics
        try:
            self._classifier = make_classifier(config.backend, config.model_path, config.preprocessing,
                                               config.color_rule, config.device, config.cpu_threads)
        except ClassifierError as exc:
            raise ConfigError(str(exc)) from None
        if self._classifier.cameras != len(topics):
            raise ConfigError(f"the model takes {self._classifier.cameras} camera(s) but image_topics names "
                              f"{len(topics)}")
        self._backend = f"{config.backend} {config.model_path}".strip()
        self._labels = [camera_label(t) for t in topics]
        self._grouper: FrameGrouper[ImageMessage] = FrameGrouper(len(topics), int(config.max_skew * 1e9))
        self._wake = threading.Event()  # a frame or a camera state arrived
        self._closing = False
        self._state = ""
        self._skew_ms = RateMeter(window_s=5.0)
        self._inference_ms = RateMeter(window_s=5.0)
        self._end_to_end_ms = RateMeter(window_s=5.0)
        self._errors = 0
        self._classified = 0
        self._last_error = ""
        self._probability_pub = self.create_publisher(Float32, "reward/probability", 10)
        self._success_pub = self.create_publisher(Bool, "reward/success", 10)
        self._stamped_pub = self.create_publisher(Vector3Stamped, "reward/stamped", 10)
        self._state_pub = self.create_publisher(String, "reward/state", latched_qos())
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        for index, topic in enumerate(topics):
            subscribe_images(self, topic, config.transport, lambda msg, i=index: self._on_image(i, msg))
            self.create_subscription(String, state_topic_for(topic), lambda msg, i=index: self._on_state(i, msg),
                                     latched_qos())
        self._worker = threading.Thread(target=self._classify_loop, name="reward-inference", daemon=True)
        self._worker.start()
        self.create_timer(1.0, self._publish_diagnostics)
        inputs = [input_topic(t, config.transport) for t in topics]
        skew = "auto" if config.max_skew == 0 else f"{config.max_skew * 1000:.0f} ms"
        self.get_logger().info(f"classifying {inputs} with {self._backend} (threshold {config.threshold}, "
                               f"max skew {skew})")

    def _apply(self, config: RewardConfig, changed: frozenset[str]) -> None:
        """A live change: the threshold is read at each publish; the rule, crops or max skew are swapped in."""
        if config.backend == "color" and any(name.startswith("color.") for name in changed):
            self._classifier = config.color_rule
        if "crops" in changed and config.backend != "color":
            self._classifier.preprocessing = config.preprocessing
        if "max_skew" in changed:
            self._grouper.max_skew_ns = int(config.max_skew * 1e9)

    def _on_image(self, camera: int, msg: ImageMessage) -> None:
        self._grouper.add(camera, stamp_to_ns(msg.header.stamp), msg)
        self._wake.set()

    def _on_state(self, camera: int, msg: String) -> None:
        self._grouper.set_state(camera, msg.data)
        self._wake.set()

    def _classify_loop(self) -> None:
        while not self._closing:
            # Also wake now and then: a camera that goes quiet (LATE) says nothing itself.
            self._wake.wait(timeout=0.2)
            self._wake.clear()
            decision = self._grouper.take()
            state = reward_state(self._labels, self._grouper.problems(time.time_ns()), decision, self._state)
            if state != self._state:
                self._state = state
                if not self.publish_while_up(lambda s=state: self._state_pub.publish(String(data=s))):
                    return
            if decision is not None:
                self._skew_ms.add(decision.skew_ns / 1e6)
            if not isinstance(decision, FrameSet):
                continue
            messages = decision.items
            started = time.monotonic()
            try:
                preprocessing = self._params.config.preprocessing
                images = [to_array(m, "rgb8", preprocessing.decode_size(i)) for i, m in enumerate(messages)]
                probability = float(self._classifier.predict(images))
            except (ImageConversionError, ClassifierError, ValueError, RuntimeError) as exc:
                self._errors += 1
                if str(exc) != self._last_error:  # log each new failure once, count the rest
                    self.get_logger().error(f"classification failed: {exc}")
                self._last_error = str(exc)
                continue
            self._last_error = ""  # diagnostics report the current failure, `errors` keeps the count
            self._inference_ms.add((time.monotonic() - started) * 1000)
            self._classified += 1
            if not self.publish_while_up(lambda m=messages[0], p=probability: self._publish(m, p)):
                return

    def _publish(self, source: ImageMessage, probability: float) -> None:
        threshold = self._params.config.threshold
        success = is_success(probability, threshold)
        self._probability_pub.publish(Float32(data=probability))
        self._success_pub.publish(Bool(data=success))
        stamped = Vector3Stamped()
        stamped.header = source.header  # the image's capture stamp: latency is measurable end to end
        stamped.vector.x, stamped.vector.y, stamped.vector.z = probability, threshold, float(success)
        self._stamped_pub.publish(stamped)
        self._end_to_end_ms.add((time.time_ns() - stamp_to_ns(source.header.stamp)) / 1e6)

    def _publish_diagnostics(self) -> None:
        rate = self._inference_ms.rate_hz()
        state = self._state
        if self._last_error:
            level, message = DiagnosticStatus.ERROR, f"classification failing: {self._last_error}"
        elif state != CLASSIFYING:
            level, message = DiagnosticStatus.WARN, f"not classifying: {state or 'waiting for images'}"
        elif rate == 0.0:
            level, message = DiagnosticStatus.WARN, "waiting for images"
        else:
            level, message = DiagnosticStatus.OK, f"classifying at {rate:.1f} Hz"
        grouper = self._grouper
        values = {
            "backend": self._backend, "threshold": f"{self._params.config.threshold:.3f}", "rate_hz": f"{rate:.2f}",
            "cameras": ", ".join(self._labels), "state": state,
            "inference_ms_p50": f"{self._inference_ms.percentile(50):.2f}",
            "inference_ms_p95": f"{self._inference_ms.percentile(95):.2f}",
            "capture_to_reward_ms_p50": f"{self._end_to_end_ms.percentile(50):.2f}",
            "capture_to_reward_ms_p95": f"{self._end_to_end_ms.percentile(95):.2f}",
            "max_skew_ms": f"{grouper.effective_skew_ns() / 1e6:.1f}{' (auto)' if grouper.max_skew_ns == AUTO else ''}",
            "skew_ms_p50": f"{self._skew_ms.percentile(50):.2f}",
            "skew_ms_p95": f"{self._skew_ms.percentile(95):.2f}",
            "sets_classified": str(self._classified), "sets_skipped": str(grouper.skipped),
            "frames_received": str(sum(grouper.received)), "frames_dropped": str(grouper.dropped),
            "frames_received_per_camera": ", ".join(str(n) for n in grouper.received),
            "errors": str(self._errors),
        }
        status = DiagnosticStatus(level=level, name=f"cam_guard: {self.get_fully_qualified_name()}",
                                  message=message, hardware_id=self._backend,
                                  values=[KeyValue(key=k, value=v) for k, v in values.items()])
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self._diag_pub.publish(array)

    def close(self) -> None:
        self._closing = True
        self._wake.set()
        self._worker.join(timeout=2.0)


def main() -> None:
    code = run_node(RewardNode)
    # The node is shut down and its participant gone. With torch, transformers and lerobot loaded,
    # the interpreter's own teardown garbage-collects their module graph for seconds (2.4 s idle,
    # 12 s on a loaded 2-core machine), so Ctrl-C would miss its 2 s; nothing is left to finalise.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
