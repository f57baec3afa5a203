"""A hardware-free robot for running LeRobot's gym_manipulator in tests (LeRobot 0.4.4 ships none).

Its joints hold what they are sent; its cameras are real LeRobot cameras made from the config.
Loaded with `--env.robot.discover_packages_path=hardware_free_arm` (this folder on PYTHONPATH).
"""

from dataclasses import dataclass, field
from typing import Any

from lerobot.cameras.configs import CameraConfig
from lerobot.cameras.utils import make_cameras_from_configs
from lerobot.robots.config import RobotConfig
from lerobot.robots.robot import Robot

# gym_manipulator's RobotEnv indexes its 4-element action (x, y, z, gripper deltas) by motor.
MOTORS = ("x", "y", "z", "gripper")
READ_TIMEOUT_MS = 1000  # a loaded 2-core CI machine can be slower than LeRobot's 200 ms default


@RobotConfig.register_subclass("hardware_free_arm")
@dataclass
class HardwareFreeArmConfig(RobotConfig):
    cameras: dict[str, CameraConfig] = field(default_factory=dict)


class MotorNames:
    """What RobotEnv reads from a robot's bus: the motor names."""

    def __init__(self, names: tuple[str, ...]) -> None:
        self.motors = dict.fromkeys(names)


class HardwareFreeArm(Robot):
    config_class = HardwareFreeArmConfig
    name = "hardware_free_arm"

    def __init__(self, config: HardwareFreeArmConfig) -> None:
        super().__init__(config)
        self.config = config
        self.cameras = make_cameras_from_configs(config.cameras)
        self.bus = MotorNames(MOTORS)
        self.positions = dict.fromkeys(MOTORS, 0.0)
        self._connected = False

    @property
    def observation_features(self) -> dict:
        cameras = {name: (cfg.height, cfg.width, 3) for name, cfg in self.config.cameras.items()}
        return {f"{motor}.pos": float for motor in MOTORS} | cameras

    @property
    def action_features(self) -> dict:
        return {f"{motor}.pos": float for motor in MOTORS}

    @property
    def is_connected(self) -> bool:
        return self._connected

    def connect(self, calibrate: bool = True) -> None:
        for camera in self.cameras.values():
            camera.connect()
        self._connected = True

    @property
    def is_calibrated(self) -> bool:
        return True

    def calibrate(self) -> None:
        pass

    def configure(self) -> None:
        pass

    def get_observation(self) -> dict[str, Any]:
        observation: dict[str, Any] = {f"{motor}.pos": value for motor, value in self.positions.items()}
        for name, camera in self.cameras.items():
            observation[name] = camera.async_read(timeout_ms=READ_TIMEOUT_MS)
        return observation

    def send_action(self, action: dict[str, Any]) -> dict[str, Any]:
        self.positions.update({key.removesuffix(".pos"): float(value) for key, value in action.items()})
        return action

    def disconnect(self) -> None:
        for camera in self.cameras.values():
            if camera.is_connected:
                camera.disconnect()
        self._connected = False
