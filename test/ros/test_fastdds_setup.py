"""What cam_guard sets in Fast DDS holds with the user's own profile too, and a publication mode either works
or is refused at start with one line (issue 18)."""

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from helpers import NodeProcess
from sensor_msgs.msg import Image

from cam_guard.ros.fastdds_setup import (
    FastDdsSetupError,
    builtin_transports_value,
    check_domain_id,
    check_publication_mode,
    edit_profile,
    non_blocking_copy,
)
from cam_guard.ros.transport import PROFILE_PATH

NS = "http://www.eprosima.com/XMLSchemas/fastRTPS_Profiles"
USER_PROFILE = f"""<?xml version="1.0" encoding="UTF-8" ?>
<dds xmlns="{NS}"><profiles>
  <transport_descriptors>
    <transport_descriptor><transport_id>my_udp</transport_id><type>UDPv4</type>
      <sendBufferSize>1048576</sendBufferSize></transport_descriptor>
    <transport_descriptor><transport_id>my_tcp</transport_id><type>TCPv4</type>
      <non_blocking_send>false</non_blocking_send></transport_descriptor>
    <transport_descriptor><transport_id>my_shm</transport_id><type>SHM</type></transport_descriptor>
  </transport_descriptors>
  <participant profile_name="mine" is_default_profile="true"><rtps>
    <userTransports><transport_id>my_udp</transport_id><transport_id>my_shm</transport_id></userTransports>
    <useBuiltinTransports>false</useBuiltinTransports>
  </rtps></participant>
</profiles></dds>
"""


def descriptor_values(xml_text: str, tag: str = "non_blocking_send") -> dict[str, str | None]:
    root = ET.fromstring(xml_text)
    return {d.find(f"{{{NS}}}transport_id").text: getattr(d.find(f"{{{NS}}}{tag}"), "text", None)
            for d in root.iter(f"{{{NS}}}transport_descriptor")}


def test_network_transports_become_non_blocking_unless_the_user_said_otherwise():
    edited, edit = edit_profile(USER_PROFILE)
    assert descriptor_values(edited) == {"my_udp": "true", "my_tcp": "false", "my_shm": None}
    assert descriptor_values(edited, "healthy_check_timeout_ms") == {"my_udp": None, "my_tcp": None, "my_shm": None}
    assert edit.changed == ["my_udp: non_blocking_send=true"]
    assert edit.kept_blocking == ["my_tcp"]
    assert not edit.uses_builtin_transports
    assert "sendBufferSize>1048576" in edited, "everything else is kept"
    bare, edit = edit_profile("<profiles><transport_descriptors><transport_descriptor><transport_id>u</transport_id>"
                              "<type>UDPv6</type></transport_descriptor></transport_descriptors></profiles>")
    assert "<non_blocking_send>true</non_blocking_send>" in bare and edit.uses_builtin_transports
    with pytest.raises(FastDdsSetupError, match="cannot read"):
        edit_profile("<profiles><unclosed></profiles>")


def test_the_shipped_profile_already_says_non_blocking():
    _, edit = edit_profile(PROFILE_PATH.read_text())
    assert edit.changed == [] and edit.kept_blocking == []


def test_the_copy_is_named_by_content(tmp_path):
    user = tmp_path / "mine.xml"
    user.write_text(USER_PROFILE)
    first, _ = non_blocking_copy(str(user), str(tmp_path))
    second, _ = non_blocking_copy(str(user), str(tmp_path))
    assert first == second and first.name.startswith("cam_guard-fastdds-")
    assert descriptor_values(first.read_text())["my_udp"] == "true"


def test_builtin_transports_get_non_blocking_unless_chosen():
    assert builtin_transports_value(None) == "DEFAULT?non_blocking=true"
    assert builtin_transports_value("LARGE_DATA") == "LARGE_DATA?non_blocking=true"
    assert builtin_transports_value("LARGE_DATA?max_msg_size=1MB") == "LARGE_DATA?max_msg_size=1MB&non_blocking=true"
    assert builtin_transports_value("UDPv4?non_blocking=false") is None


def test_publication_modes():
    for mode in (None, "", "SYNCHRONOUS", "ASYNCHRONOUS", "AUTO"):
        check_publication_mode(mode)
    with pytest.raises(FastDdsSetupError, match="SYNCHRONOUS, ASYNCHRONOUS, AUTO"):
        check_publication_mode("async")


def test_domain_ids():
    for domain in (None, "", "0", "101", "232"):
        check_domain_id(domain)
    for domain in ("233", "-1", "abc", "1.5"):
        with pytest.raises(FastDdsSetupError, match="a whole number from 0 to 232"):
            check_domain_id(domain)


def test_an_unknown_publication_mode_is_refused_with_one_line(ros):
    with NodeProcess("cam_guard.camera_node", {"device": "synthetic"},
                     env={"RMW_FASTRTPS_PUBLICATION_MODE": "async"}) as node:
        assert node.wait(timeout=30) == 2
        lines = node.output().strip().splitlines()
    assert lines == ["[camera_node] error: RMW_FASTRTPS_PUBLICATION_MODE='async' is not one of SYNCHRONOUS, "
                     "ASYNCHRONOUS, AUTO"]


@pytest.mark.parametrize("mode", ["ASYNCHRONOUS", "SYNCHRONOUS"])
def test_the_node_streams_in_either_publication_mode_with_the_users_profile(probe, tmp_path, mode):
    user = tmp_path / "mine.xml"
    user.write_text(USER_PROFILE)
    images = probe.subscribe(Image, "/image_raw")
    env = {"RMW_FASTRTPS_PUBLICATION_MODE": mode, "FASTDDS_DEFAULT_PROFILES_FILE": str(user)}
    with NodeProcess("cam_guard.camera_node", {"device": "synthetic", "width": 320, "height": 240}, env=env) as node:
        images.wait_count(30, timeout=30)
        log = node.output()
        code, _ = node.stop()
    assert code == 0
    assert f"Fast DDS profile {user}: added my_udp: non_blocking_send=true in " in log
    assert "sets non_blocking_send=false for my_tcp" in log
    copy = re.search(r"non_blocking_send=true in (\S+)", log).group(1)
    assert descriptor_values(Path(copy).read_text())["my_udp"] == "true"
