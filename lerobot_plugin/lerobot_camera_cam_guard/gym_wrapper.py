"""Put cam_guard's out-of-process reward classifier into a gymnasium env's reward and termination."""

from typing import Any, Literal

import gymnasium as gym

from lerobot_camera_cam_guard.reward import RewardSource


class CamGuardRewardWrapper(gym.Wrapper):
    """reward = 1.0 on success else 0.0 (as LeRobot's reward-classifier step); success ends the episode.

    A reward older than `max_age_ms` raises TimeoutError (`on_stale="raise"`, the default: never
    train on a stale reward) or keeps the env's own reward and flags `info["cam_guard_reward_stale"]`.
    """

    def __init__(self, env: gym.Env, source: RewardSource, max_age_ms: float = 500,
                 terminate_on_success: bool = True, on_stale: Literal["raise", "ignore"] = "raise") -> None:
        super().__init__(env)
        if on_stale not in ("raise", "ignore"):
            raise ValueError("on_stale must be 'raise' or 'ignore'")
        self.source = source
        self.max_age_ms = max_age_ms
        self.terminate_on_success = terminate_on_success
        self.on_stale = on_stale

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        observation, reward, terminated, truncated, info = self.env.step(action)
        try:
            reading = self.source.latest(self.max_age_ms)
        except TimeoutError:
            if self.on_stale == "raise":
                raise
            return observation, reward, terminated, truncated, {**info, "cam_guard_reward_stale": True}
        info = {**info, "cam_guard_reward": reading, "cam_guard_reward_stale": False}
        terminated = bool(terminated or (self.terminate_on_success and reading.success))
        return observation, 1.0 if reading.success else 0.0, terminated, truncated, info
