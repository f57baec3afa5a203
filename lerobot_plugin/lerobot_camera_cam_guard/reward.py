"""The reward_node's success probability, for a trainer to poll (no DDS in the trainer)."""

from dataclasses import dataclass

from cam_guard.bridge.client import BridgeClient, BridgeError, require_fresh


@dataclass(frozen=True)
class RewardReading:
    probability: float
    success: bool
    threshold: float
    age_ms: float  # now minus the capture time of the image it was computed from
    camera_state: str


class RewardSource:
    """`latest(max_age_ms)` returns the newest reward, or raises TimeoutError if none is that fresh."""

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

    def latest(self, max_age_ms: float = 500) -> RewardReading:
        if not self._connected:
            raise ConnectionError("RewardSource is not connected")
        try:
            sample = self._client.reward()
            state = self._client.status().state
        except BridgeError as exc:
            raise ConnectionError(f"reward source: {exc}") from None
        age_ms = require_fresh("reward", None if sample is None else sample.stamp_ns, max_age_ms,
                               self._client.describe_state())
        return RewardReading(sample.probability, sample.success, sample.threshold, age_ms, state)
