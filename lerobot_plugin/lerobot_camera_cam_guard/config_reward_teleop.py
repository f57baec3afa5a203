"""`"teleop": {"type": "cam_guard_reward", "human": {"type": "gamepad"}}`: cam_guard's rewards in HIL-SERL.

LeRobot 0.4.4's gym_manipulator builds its processor pipelines itself; the one reward input a
config can name is the teleoperator's events, where a human's "success" ends the episode with
reward 1. This teleoperator adds the reward node's success to the human device's events.
"""

from dataclasses import dataclass
from typing import Any

import draccus
from lerobot.teleoperators.config import TeleoperatorConfig

STALE_CHOICES = ("raise", "ignore")


@TeleoperatorConfig.register_subclass("cam_guard_reward")
@dataclass
class CamGuardRewardTeleopConfig(TeleoperatorConfig):
    # The human's device, as env.teleop would name it ({"type": "gamepad", ...}); none: no human.
    # A plain dict: a TeleoperatorConfig field would make draccus recurse through this class forever.
    human: dict[str, Any] | None = None
    reward_topic: str = "/reward/stamped"  # a cam_guard reward_node's reward/stamped
    state_topic: str = "/camera_state"  # quoted in errors; "" to ignore
    max_age_ms: float = 500  # a reward computed from an older frame is stale
    on_stale: str = "raise"  # "raise" (never train on a stale reward) or "ignore" (no success from it)
    connect_timeout_ms: int = 10000  # connect() waits this long for the first fresh reward

    def __post_init__(self) -> None:
        self.human_config = None if self.human is None else draccus.decode(TeleoperatorConfig, self.human)
        if self.on_stale not in STALE_CHOICES:
            raise ValueError(f"on_stale must be one of {', '.join(STALE_CHOICES)} (got '{self.on_stale}')")
        if self.max_age_ms <= 0 or self.connect_timeout_ms <= 0:
            raise ValueError("max_age_ms and connect_timeout_ms must be positive")
