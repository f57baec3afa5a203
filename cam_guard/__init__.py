"""cam_guard: ROS 2 camera, reward-classifier and preview nodes that keep robot-learning cameras alive."""

__version__ = "0.1.0"
