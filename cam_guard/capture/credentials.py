"""A camera's user and password, kept out of parameters, logs and topics.

`credentials` names where they are: `env:VARIABLE` or `file:/path` holding `user:password` (the
file readable by the node's user only, e.g. a Docker/Kubernetes secret). Only the capture worker
reads the secret, when it opens a URL source; everything else sees the reference.
"""

import os
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

NETWORK_SCHEMES = ("http", "https", "rtsp", "rtsps", "rtmp", "rtmps", "rtp", "srt", "udp", "tcp")


def _secret(reference: str) -> str:
    kind, _, where = reference.partition(":")
    if kind == "env":
        if where not in os.environ:
            raise ValueError(f"credentials '{reference}': environment variable {where} is not set")
        return os.environ[where].strip()
    if kind == "file":
        try:
            return Path(where).expanduser().read_text().strip()
        except OSError as exc:
            raise ValueError(f"credentials '{reference}': cannot read the file ({exc.strerror})") from None
    # Not echoed: what was given may be the secret itself.
    raise ValueError("credentials must be 'env:VARIABLE' or 'file:/path' naming where user:password is, "
                     "not the secret itself")


def read_credentials(reference: str) -> tuple[str, str] | None:
    """(user, password) named by `reference`; None for ''. ValueError (never showing the secret)."""
    if not reference:
        return None
    user, colon, password = _secret(reference).partition(":")
    if not colon or not user:
        raise ValueError(f"credentials '{reference}' must hold 'user:password'")
    return user, password


def with_credentials(url: str, credentials: tuple[str, str] | None) -> str:
    """`url` with the user and password put in, for a network URL that carries none itself."""
    parts = urlsplit(url)
    if credentials is None or parts.scheme not in NETWORK_SCHEMES or "@" in parts.netloc:
        return url
    user, password = credentials
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{parts.netloc}"
    return urlunsplit(parts._replace(netloc=netloc))
