"""Credentials never shown: the one redaction function, and the credentials reference (pure logic)."""

import pytest

from cam_guard.capture.credentials import read_credentials, with_credentials
from cam_guard.capture.sources import SourceError, SourceSpec, parse_source
from cam_guard.common.redact import redact


@pytest.mark.parametrize(("text", "shown"), [
    ("http://admin:secret@127.0.0.1:8080/x.mjpg", "http://***@127.0.0.1:8080/x.mjpg"),
    ("rtsp://user:p@ss@cam.local:554/stream1", "rtsp://***@cam.local:554/stream1"),  # an unencoded '@'
    ("opened rtsp://u:pw@h/s; next try http://a:b@c/d in 0.2 s",
     "opened rtsp://***@h/s; next try http://***@c/d in 0.2 s"),
    ("http://cam/api/stream?user=admin&password=hunter2&fps=30", "http://cam/api/stream?user=***&password=***&fps=30"),
    ("https://cam/x.mjpg?token=abc.def", "https://cam/x.mjpg?token=***"),
    ("VIDEOIO(FFMPEG): trying capture filename='http://admin:secret@127.0.0.1:1/x.mjpg' ...",
     "VIDEOIO(FFMPEG): trying capture filename='http://***@127.0.0.1:1/x.mjpg' ..."),
    ("device 'admin:secret@cam.local/stream' is not a URL", "device '***@cam.local/stream' is not a URL"),
    ("/dev/video0", "/dev/video0"),
    ("[camera]: opened 640x480 @ 30.0 fps", "[camera]: opened 640x480 @ 30.0 fps"),
    ("time 12:30:01@host", "time ***@host"),
    ("file:///home/me/calibration.yaml", "file:///home/me/calibration.yaml"),
    ("http://cam.local/stream.mjpg", "http://cam.local/stream.mjpg"),
])
def test_redact_hides_userinfo_and_secret_query_values(text, shown):
    assert redact(text) == shown


def test_a_source_never_shows_its_password():
    spec = parse_source("http://admin:secret@127.0.0.1:8080/x.mjpg")
    assert spec.target.endswith("@127.0.0.1:8080/x.mjpg")  # the worker still gets the real URL
    assert "secret" not in str(spec) and "secret" not in repr(spec) and "secret" not in f"{[spec]}"
    assert "secret" not in repr(SourceSpec("ffmpeg", "rtsp://u:secret@h/s"))
    with pytest.raises(SourceError) as raised:
        parse_source("admin:secret@nowhere")  # not a URL, not a file
    assert "secret" not in str(raised.value)


def test_credentials_come_from_the_environment_or_a_file(tmp_path, monkeypatch):
    monkeypatch.setenv("CAM_GUARD_TEST_CREDENTIALS", "admin:s3cr:et/@")
    assert read_credentials("env:CAM_GUARD_TEST_CREDENTIALS") == ("admin", "s3cr:et/@")
    secret_file = tmp_path / "camera.secret"
    secret_file.write_text("viewer:pw\n")
    assert read_credentials(f"file:{secret_file}") == ("viewer", "pw")
    assert read_credentials("") is None
    url = with_credentials("rtsp://cam.local:554/s", ("admin", "s3cr:et/@"))
    assert url == "rtsp://admin:s3cr%3Aet%2F%40@cam.local:554/s"
    assert with_credentials("http://other:pw@cam/x", ("admin", "x")) == "http://other:pw@cam/x", "the URL's own wins"
    assert with_credentials("/tmp/video.mp4", ("admin", "x")) == "/tmp/video.mp4"


@pytest.mark.parametrize(("reference", "message"), [
    ("env:CAM_GUARD_NOT_SET_ANYWHERE", "environment variable CAM_GUARD_NOT_SET_ANYWHERE is not set"),
    ("file:/no/such/camera.pw", "cannot read the file"),
    ("admin:justapassword", "must be 'env:VARIABLE' or 'file:/path'"),
    ("env:CAM_GUARD_TEST_NO_COLON", "must hold 'user:password'"),
])
def test_a_bad_credentials_reference_says_why_without_the_secret(monkeypatch, reference, message):
    monkeypatch.setenv("CAM_GUARD_TEST_NO_COLON", "justapassword")
    with pytest.raises(ValueError, match=message) as raised:
        read_credentials(reference)
    assert "justapassword" not in str(raised.value)
