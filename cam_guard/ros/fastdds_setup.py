"""What cam_guard asks of Fast DDS so that no reader can slow a publisher (issue 18), in plain Python.

rclpy holds the GIL while `publish()` runs, so a send that blocks freezes the whole node — every
topic, the watchdog and the diagnostics — not only the topic being sent (measured: a 2.7 MB frame to
one reader behind 100 Mbit blocked `publish()`, and every other thread of the process, for 220 ms).
Fast DDS blocks in the UDP (and TCP) send while the socket's buffer is full, i.e. for as long as
the slowest network reader's link needs. With `non_blocking_send` it drops what does not fit
instead: that reader gets fewer frames, the others all of them.

Shared-memory ports keep Fast DDS's 1 s `healthy_check_timeout_ms`: a longer one spared the camera
the CPU a *stopped* local reader costs it (each fragment re-opens that port), but then a participant
still sending to a *killed* one's port did not discover its replacement for as long (README).

This module makes non-blocking sends hold for any profile: the shipped one has them; a user's own
profile (FASTDDS_DEFAULT_PROFILES_FILE) is read, and a copy with `non_blocking_send` added to every
UDP/TCP transport that does not set it is what Fast DDS loads; Fast DDS's built-in transports get
non-blocking sends through FASTDDS_BUILTIN_TRANSPORTS. What the user's profile sets
(`<non_blocking_send>false</...>`, `non_blocking=false`) is kept: that is the override.
"""

import hashlib
import os
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

PUBLICATION_MODE_VAR = "RMW_FASTRTPS_PUBLICATION_MODE"
PUBLICATION_MODES = ("SYNCHRONOUS", "ASYNCHRONOUS", "AUTO")
BUILTIN_TRANSPORTS_VAR = "FASTDDS_BUILTIN_TRANSPORTS"
_NETWORK_TRANSPORTS = ("UDPv4", "UDPv6", "TCPv4", "TCPv6")
_NON_BLOCKING = "non_blocking_send"


class FastDdsSetupError(ValueError):
    """A Fast DDS setting cam_guard cannot work with; reported as one line at start."""


MAX_DOMAIN_ID = 232  # DDS maps domain d to UDP port 7400 + 250 d + offsets: above 232 they pass 65535


def check_domain_id(value: str | None) -> None:
    """Fast DDS fails inside node creation on a domain it has no ports for, which a launcher takes
    for a crash and restarts forever; refuse it at start with one line instead."""
    if value is None or not value.strip():
        return
    if not value.strip().isdigit() or int(value) > MAX_DOMAIN_ID:
        raise FastDdsSetupError(f"ROS_DOMAIN_ID='{value}' is not a domain DDS can use: a whole number from 0 to "
                                f"{MAX_DOMAIN_ID} (ports pass 65535 above it; ROS 2 advises 0-101)")


def check_publication_mode(value: str | None) -> None:
    """rmw_fastrtps silently falls back to SYNCHRONOUS on a value it does not know; refuse it."""
    if value and value not in PUBLICATION_MODES:
        raise FastDdsSetupError(f"{PUBLICATION_MODE_VAR}='{value}' is not one of {', '.join(PUBLICATION_MODES)}")


def builtin_transports_value(current: str | None) -> str | None:
    """FASTDDS_BUILTIN_TRANSPORTS with non_blocking=true added (None: leave it as it is)."""
    if current is None or not current.strip():
        return "DEFAULT?non_blocking=true"
    if "non_blocking=" in current:
        return None  # the user's explicit choice
    return f"{current}{'&' if '?' in current else '?'}non_blocking=true"


@dataclass
class ProfileEdit:
    """What `non_blocking_copy` did to a user's profile, for the log."""

    changed: list[str] = field(default_factory=list)  # "transport_id: what was added"
    kept_blocking: list[str] = field(default_factory=list)  # transport_ids the user set to false
    uses_builtin_transports: bool = True  # the default participant keeps Fast DDS's own transports


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(element: ET.Element, name: str) -> ET.Element | None:
    return next((c for c in element if _local(c.tag) == name), None)


def edit_profile(xml_text: str) -> tuple[str, ProfileEdit]:
    """Add `non_blocking_send` to every network transport that does not set it."""
    try:
        root = ET.fromstring(xml_text)
    except ET.ParseError as exc:
        raise FastDdsSetupError(f"cannot read the Fast DDS profile: {exc}") from None
    namespace = root.tag[1:].split("}", 1)[0] if root.tag.startswith("{") else ""
    if namespace:
        ET.register_namespace("", namespace)
    edit = ProfileEdit()

    def add(descriptor: ET.Element, tag: str, value: str, label: str) -> None:
        element = ET.SubElement(descriptor, f"{{{namespace}}}{tag}" if namespace else tag)
        element.text = value
        edit.changed.append(f"{label}: {tag}={value}")

    for descriptor in (e for e in root.iter() if _local(e.tag) == "transport_descriptor"):
        kind, name = _child(descriptor, "type"), _child(descriptor, "transport_id")
        kind_text = (kind.text or "").strip() if kind is not None else ""
        label = (name.text or "").strip() if name is not None else "?"
        if kind_text not in _NETWORK_TRANSPORTS:
            continue
        existing = _child(descriptor, _NON_BLOCKING)
        if existing is None:
            add(descriptor, _NON_BLOCKING, "true", label)
        elif (existing.text or "").strip().lower() != "true":
            edit.kept_blocking.append(label)
    for participant in (e for e in root.iter() if _local(e.tag) == "participant"):
        if participant.get("is_default_profile", "").lower() != "true":
            continue
        rtps = _child(participant, "rtps")
        builtin = _child(rtps, "useBuiltinTransports") if rtps is not None else None
        edit.uses_builtin_transports = builtin is None or (builtin.text or "").strip().lower() != "false"
    return ET.tostring(root, encoding="unicode", xml_declaration=True), edit


def non_blocking_copy(user_profile: str, directory: str | None = None) -> tuple[Path, ProfileEdit]:
    """Write the edited copy of `user_profile` (named by its content, so reruns reuse one file)."""
    try:
        text = Path(user_profile).read_text()
    except OSError as exc:
        raise FastDdsSetupError(f"cannot read the Fast DDS profile {user_profile}: {exc.strerror}") from None
    edited, edit = edit_profile(text)
    digest = hashlib.sha256(edited.encode()).hexdigest()[:16]
    target = Path(directory or tempfile.gettempdir()) / f"cam_guard-fastdds-{digest}.xml"
    if not target.exists():
        partial = target.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(edited)
        partial.replace(target)  # atomic: a process starting beside us never reads half a file
    return target, edit
