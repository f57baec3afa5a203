"""The reward_node's success probability, for a trainer to poll (no DDS in the trainer)."""

import time
from dataclasses import dataclass

from cam_guard.bridge.client import BridgeClient, BridgeError, require_fresh
from cam_guard.common.frame_ring import RewardSample


@dataclass(frozen=True)
class RewardReading:
    probability: float
    success: bool
    threshold: float
    age_ms: float  # now minus the capture time of the image it was computed from
    camera_state: str


class RewardSource:
    """`latest(max_age_ms)` returns the newest reward, or raises TimeoutError if none is that fresh;
    `wait` waits for one."""

    def __init__(self, reward_topic: str = "/reward/stamped", state_topic: str = "/camera_state") -> None:
        self._client = BridgeClient(state_topic=state_topic, reward_topic=reward_topic)
        self._connected = False

    def connect(self) -> None:
        self._client.start()
        self._connected = True

    def disconnect(self) -> None:
        self._client.stop()
        self._connected = False

    def __enter__(self) -> "RewardSource":
        self.connect()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.disconnect()

    def wait(self, max_age_ms: float = 500, timeout_ms: float = 10000) -> RewardReading:
        """The newest reward once one at most `max_age_ms` old is there, waiting up to `timeout_ms`
        (DDS discovery after connect() takes 1-3 s); TimeoutError if none comes."""
        client = self._connected_client()
        try:
            sample = client.wait_reward(max_age_ms / 1000, timeout_ms / 1000)
        except BridgeError as exc:
            raise ConnectionError(f"reward source: {exc}") from None
        if sample is None:
            raise TimeoutError(f"no reward at most {max_age_ms:.0f} ms old within {timeout_ms:.0f} ms "
                               f"({client.describe_state()})")
        return self._reading(client, sample, (time.time_ns() - sample.stamp_ns) / 1e6)

    def _connected_client(self) -> BridgeClient:
        if not self._connected:
            raise ConnectionError("RewardSource is not connected")
        return self._client

    def latest(self, max_age_ms: float = 500) -> RewardReading:
        client = self._connected_client()
        try:
            sample = client.reward()
        except BridgeError as exc:
            raise ConnectionError(f"reward source: {exc}") from None
        age_ms = require_fresh("reward", None if sample is None else sample.stamp_ns, max_age_ms,
                               client.describe_state())
        return self._reading(client, sample, age_ms)

    @staticmethod
    def _reading(client: BridgeClient, sample: RewardSample, age_ms: float) -> RewardReading:
        try:
            state = client.status().state
        except BridgeError as exc:
            raise ConnectionError(f"reward source: {exc}") from None
        return RewardReading(sample.probability, sample.success, sample.threshold, age_ms, state)
