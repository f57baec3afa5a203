"""The process and probe harness lives in cam_guard.harness (the benchmarks use it too)."""

from cam_guard.harness import (
    NodeProcess,
    Recorder,
    RosProbe,
    diagnostic_values,
    latest_camera_status,
    process_alive,
)

__all__ = ["NodeProcess", "Recorder", "RosProbe", "diagnostic_values", "latest_camera_status", "process_alive"]
