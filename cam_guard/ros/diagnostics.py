"""Camera health as diagnostic_msgs/DiagnosticStatus, the form rqt_robot_monitor shows."""

from diagnostic_msgs.msg import DiagnosticStatus, KeyValue

from cam_guard.capture.supervisor import CaptureStatus
from cam_guard.capture.watchdog import CameraState
from cam_guard.common.redact import redact

# Streaming below this share of the expected rate is a warning: slow is not stalled, but a
# trainer wants to know (a USB bandwidth limit or a throttled source looks like this).
SLOW_RATE_FRACTION = 0.8


def _level_and_message(status: CaptureStatus, expected_fps: float) -> tuple[bytes, str]:
    state = status.state
    if state is CameraState.STREAMING:
        if status.rate_hz and status.rate_hz < SLOW_RATE_FRACTION * expected_fps:
            return DiagnosticStatus.WARN, f"streaming slowly: {status.rate_hz:.1f} of {expected_fps:.0f} fps"
        return DiagnosticStatus.OK, f"streaming {status.measured}".strip()
    if state in (CameraState.STARTING, CameraState.WARMING_UP):
        return DiagnosticStatus.WARN, f"{state.value.lower().replace('_', ' ')}: {status.reason}"
    if state is CameraState.STOPPED:
        return DiagnosticStatus.WARN, "stopped"
    if state is CameraState.RECONFIGURING:
        return DiagnosticStatus.WARN, f"reconfiguring: {status.reason}"
    return DiagnosticStatus.ERROR, f"{state.value.lower()}: {status.reason}"


def camera_diagnostic(status: CaptureStatus, name: str, expected_fps: float,
                      published: int, publish_dropped: int) -> DiagnosticStatus:
    level, message = _level_and_message(status, expected_fps)
    values = {
        "state": status.state.value,
        "reason": status.reason,
        "source": status.source,
        "asked": status.asked,
        "granted": status.granted,
        "measured": status.measured or "(after the first second of streaming)",
        "rate_hz": f"{status.rate_hz:.2f}",
        "expected_hz": f"{expected_fps:.2f}",
        "frame_age_s": "" if status.frame_age_s is None else f"{status.frame_age_s:.3f}",
        "frames_captured": str(status.frames),
        "frames_published": str(published),
        "frames_dropped_newest_only": str(publish_dropped),
        "frames_withheld_warming_up": str(status.warmup_frames),
        "decoding": "yes" if status.decoding else "no: nobody subscribes to image_raw (JPEGs checked at 1/8 scale)",
        "bad_frames": str(status.bad_frames),
        "torn_frames": str(status.torn_frames),
        "stalls": str(status.stalls),
        "reconnect_attempts": str(status.reconnect_attempts),
        "recoveries": str(status.recoveries),
        "detect_s_last_median_worst": "/".join(f"{v:.3f}" for v in status.detect_s),
        "recover_s_last_median_worst": "/".join(f"{v:.3f}" for v in status.recover_s),
        "worker_pid": str(status.worker_pid or ""),
        "unreaped_workers": str(status.unreaped_workers),
        "recent_errors": " | ".join(status.recent_errors),
    }
    values.update({f"control.{name}": text for name, text in status.controls.items()})
    return DiagnosticStatus(level=level, name=name, message=redact(message), hardware_id=status.source,
                            values=[KeyValue(key=k, value=redact(v)) for k, v in values.items()])


def inactive_camera_diagnostic(name: str) -> DiagnosticStatus:
    """A managed camera_node that is not active holds no device and captures nothing."""
    return DiagnosticStatus(level=DiagnosticStatus.WARN, name=name, message="not active: camera released (lifecycle)",
                            values=[KeyValue(key="state", value=CameraState.STOPPED.value)])
