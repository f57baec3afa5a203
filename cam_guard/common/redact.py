"""Credentials out of everything cam_guard shows: logs, /rosout, diagnostics, states, exceptions.

A camera URL may carry a user and password (`rtsp://user:pass@cam/stream`) or a token in its
query (`?token=…`). Whatever prints or publishes a source, a reason or a log line passes it
through `redact` first.
"""

import re

# scheme://userinfo@ : everything up to the last '@' before the host (a password may hold an '@').
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)[^\s/?#]*@")
# user:password@host with the scheme left out (a mistyped device parameter is echoed in its error).
_BARE_USERINFO = re.compile(r"(?<![\w/@:.-])[^\s/:@'\"]+:[^\s/'\"]*@(?=[\w\[])")
_SECRET_QUERY = re.compile(
    r"(?P<key>[?&;](?:password|passwd|pwd|pass|token|access_token|auth|authorization|key|api_key|apikey|"
    r"secret|signature|sig|user|username)=)[^&;#\s'\"]*", re.IGNORECASE)
HIDDEN = "***"


def redact(text: str) -> str:
    """`text` with the credentials of every URL in it replaced by ***."""
    text = _USERINFO.sub(lambda m: f"{m['scheme']}{HIDDEN}@", text)
    text = _BARE_USERINFO.sub(f"{HIDDEN}@", text)
    return _SECRET_QUERY.sub(lambda m: f"{m['key']}{HIDDEN}", text)
