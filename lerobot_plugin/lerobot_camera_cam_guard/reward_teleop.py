"""CamGuardRewardTeleop: the human's teleoperator, with cam_guard's reward node deciding success too."""

from typing import Any

from lerobot.teleoperators.teleoperator import Teleoperator
from lerobot.teleoperators.utils import TeleopEvents, make_teleoperator_from_config

from lerobot_camera_cam_guard.config_reward_teleop import CamGuardRewardTeleopConfig
from lerobot_camera_cam_guard.reward import RewardReading, RewardSource

NO_EVENTS = {TeleopEvents.IS_INTERVENTION: False, TeleopEvents.TERMINATE_EPISODE: False,
             TeleopEvents.SUCCESS: False, TeleopEvents.RERECORD_EPISODE: False}
# What gym_manipulator records as the action when no device gives one (delta x, y, z, gripper).
POLICY_ACTION = {"dtype": "float32", "shape": (4,), "names": ["delta_x", "delta_y", "delta_z", "gripper"]}


def merge_events(human: dict[Any, Any] | None, reading: RewardReading | None) -> dict[Any, Any]:
    """The human's events (none without a device), with success also when the classifier says so."""
    events = {**NO_EVENTS, **(human or {})}
    events[TeleopEvents.SUCCESS] = bool(events[TeleopEvents.SUCCESS] or (reading is not None and reading.success))
    return events


class CamGuardRewardTeleop(Teleoperator):
    """Actions, feedback and calibration are the wrapped device's; its events gain the reward node's
    success (probability > threshold, LeRobot's rule) when a step starts. gym_manipulator then ends
    the episode (`terminate_on_success`) with reward 1.0, as its own reward-classifier step would.
    A reward older than `max_age_ms` raises TimeoutError, or with `on_stale: ignore` gives no success.
    """

    config_class = CamGuardRewardTeleopConfig
    name = "cam_guard_reward"

    def __init__(self, config: CamGuardRewardTeleopConfig) -> None:
        super().__init__(config)
        self.config = config
        self.human = None if config.human_config is None else make_teleoperator_from_config(config.human_config)
        self.source = RewardSource(config.reward_topic, config.state_topic)
        self.last_reading: RewardReading | None = None  # what the latest events were decided on
        self._connected = False

    @property
    def action_features(self) -> dict:
        return POLICY_ACTION if self.human is None else self.human.action_features

    @property
    def feedback_features(self) -> dict:
        return {} if self.human is None else self.human.feedback_features

    @property
    def is_connected(self) -> bool:
        return self._connected and (self.human is None or self.human.is_connected)

    def connect(self, calibrate: bool = True) -> None:
        self.source.connect()
        self._connected = True
        try:
            self.source.wait(self.config.max_age_ms, self.config.connect_timeout_ms)
        except TimeoutError as exc:
            self.disconnect()
            raise ConnectionError(f"{self}: no fresh reward on {self.config.reward_topic} within "
                                  f"{self.config.connect_timeout_ms} ms ({exc})") from None
        if self.human is not None:
            self.human.connect()  # as gym_manipulator calls it: some devices (keyboard) take no argument

    @property
    def is_calibrated(self) -> bool:
        return self.human is None or self.human.is_calibrated

    def calibrate(self) -> None:
        if self.human is not None:
            self.human.calibrate()

    def configure(self) -> None:
        if self.human is not None:
            self.human.configure()

    def get_action(self) -> dict[str, Any]:
        return {} if self.human is None else self.human.get_action()

    def send_feedback(self, feedback: dict[str, Any]) -> None:
        if self.human is not None:
            self.human.send_feedback(feedback)

    def get_teleop_events(self) -> dict[Any, Any]:
        human = None
        if self.human is not None and hasattr(self.human, "get_teleop_events"):
            human = self.human.get_teleop_events()
        try:
            self.last_reading = self.source.latest(self.config.max_age_ms)
        except TimeoutError:
            if self.config.on_stale == "raise":
                raise
            self.last_reading = None
        return merge_events(human, self.last_reading)

    def disconnect(self) -> None:
        if self._connected:
            self.source.disconnect()
            self._connected = False
        if self.human is not None and self.human.is_connected:
            self.human.disconnect()
