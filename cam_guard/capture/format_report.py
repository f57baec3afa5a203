"""What was asked of a source, what it granted, and what arrives: one wording for the log,
the diagnostics and the node's status.

The three differ for real: a UVC camera grants the nearest size it has (or YUYV when USB bandwidth
forbids MJPG at that size); FFmpeg reports 25 fps for an MJPEG-over-HTTP stream that has no rate in
its header (a default, not a measurement); only counting frames tells the rate that arrives.
"""

from cam_guard.capture.sources import CaptureSettings, SourceSpec

MEASURE_AFTER_S = 1.0  # a rate counted over less than this is noise (and the first frames are bursty)


def stream_text(width: int, height: int, fps: float, fourcc: str = "") -> str:
    return f"{width}x{height}" + (f" {fourcc}" if fourcc else "") + f" @ {fps:.1f} fps"


def asked_text(spec: SourceSpec, settings: CaptureSettings) -> str:
    if spec.kind == "ffmpeg":
        return "whatever it sends (a stream, file or pipe takes no size or rate)"
    return stream_text(settings.width, settings.height, settings.fps, settings.fourcc if spec.kind == "v4l2" else "")


def granted_text(spec: SourceSpec, width: int, height: int, fps: float, fourcc: str) -> str:
    if spec.kind == "ffmpeg":
        return f"{stream_text(width, height, fps, fourcc)} nominal (the stream's header; not a measurement)"
    return stream_text(width, height, fps, fourcc if spec.kind == "v4l2" else "")


def differs_from_asked(spec: SourceSpec, settings: CaptureSettings, width: int, height: int, fps: float,
                       fourcc: str) -> bool:
    """A V4L2 device that granted another size, format or rate than asked (others cannot be asked)."""
    return spec.kind == "v4l2" and ((width, height, fourcc) != (settings.width, settings.height, settings.fourcc)
                                    or abs(fps - settings.fps) > 0.5)


def measured_text(width: int, height: int, rate_hz: float) -> str:
    return stream_text(width, height, rate_hz)
