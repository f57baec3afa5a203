"""`--robot.cameras='{front: {type: cam_guard, topic: /front/image_raw},
                     wrist: {type: cam_guard, topic: /wrist/image_raw}}'`"""

from dataclasses import dataclass

from lerobot.cameras.configs import CameraConfig, ColorMode

from cam_guard.ros.cell import state_topic_for


@CameraConfig.register_subclass("cam_guard")
@dataclass
class CamGuardCameraConfig(CameraConfig):
    topic: str = "/image_raw"  # a cam_guard camera_node's image_raw (any sensor_msgs/Image works)
    transport: str = "raw"  # "compressed": read <topic>/compressed (the camera's JPEG) and decode it here
    state_topic: str | None = None  # its state, quoted in errors; None: camera_state beside `topic`; "" to ignore
    color_mode: ColorMode = ColorMode.RGB
    timeout_ms: int = 1000  # read() waits this long for a new frame
    connect_timeout_ms: int = 10000  # connect() waits this long for the first one (DDS discovery takes 1-3 s)
    fps: int | None = 30
    width: int | None = 640
    height: int | None = 480

    def __post_init__(self) -> None:
        self.color_mode = ColorMode(self.color_mode)
        if not self.topic:
            raise ValueError("topic must name an image topic, e.g. /image_raw")
        if self.transport not in ("raw", "compressed"):
            raise ValueError(f"transport must be 'raw' or 'compressed', got '{self.transport}'")
        if self.state_topic is None:  # /wrist/image_raw -> /wrist/camera_state
            self.state_topic = state_topic_for(self.topic)
        if self.width is None or self.height is None or self.width <= 0 or self.height <= 0:
            raise ValueError(f"width and height must be positive (got {self.width}x{self.height})")
        if self.timeout_ms <= 0 or self.connect_timeout_ms <= 0:
            raise ValueError("timeout_ms and connect_timeout_ms must be positive")
