"""Put cam_guard's out-of-process reward classifier into a gymnasium env's reward and termination."""

from typing import Any, Literal

import gymnasium as gym

from lerobot_camera_cam_guard.reward import RewardSource


class CamGuardRewardWrapper(gym.Wrapper):
    """As LeRobot's reward-classifier step: reward = `success_reward` on success, else the env's own
    reward; success ends the episode. Success is the reward node's: probability > threshold.

    A reward older than `max_age_ms` raises TimeoutError (`on_stale="raise"`, the default: never
    train on a stale reward) or keeps the env's own reward and flags `info["cam_guard_reward_stale"]`.
    """

    def __init__(self, env: gym.Env, source: RewardSource, max_age_ms: float = 500,
                 terminate_on_success: bool = True, on_stale: Literal["raise", "ignore"] = "raise",
                 success_reward: float = 1.0) -> None:
        super().__init__(env)
        if on_stale not in ("raise", "ignore"):
            raise ValueError("on_stale must be 'raise' or 'ignore'")
        self.source = source
        self.max_age_ms = max_age_ms
        self.terminate_on_success = terminate_on_success
        self.on_stale = on_stale
        self.success_reward = success_reward

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
        return observation, self.success_reward if reading.success else reward, terminated, truncated, info
