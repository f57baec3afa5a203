"""cam_guard: ROS 2 camera, reward-classifier and preview nodes that keep robot-learning cameras alive."""

from cam_guard.common.startup import prepare_process as _prepare_process

__version__ = "0.1.0"

# The first code any cam_guard executable runs: Ctrl-C handling before the heavy imports (a program
# that only imports cam_guard, e.g. a trainer, is left alone; see common/startup.py).
_prepare_process()
