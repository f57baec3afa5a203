"""The package builds with colcon as ament_python, and launch/ names only what it installs."""

import ast
import importlib.util
import os
import shutil
import subprocess
import sys
import types
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml

from cam_guard.ros.cell import CellError, cell_nodes, parse_cell
from cam_guard.ros.parameters import ConfigError

ROOT = Path(__file__).resolve().parents[1]
LAUNCH = ROOT / "launch" / "hilserl.launch.py"


def _setup_executables() -> dict[str, str]:
    """setup.py's EXECUTABLES table: executable name -> module:function."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "EXECUTABLES":
            return ast.literal_eval(node.value)
    raise AssertionError("setup.py has no EXECUTABLES table")


class Recorded:
    """Stands in for a launch/launch_ros class: remembers how the launch file built it."""

    made: ClassVar[list["Recorded"]] = []  # every Node built, in order

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args, self.kwargs = args, kwargs


class Node(Recorded):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        Recorded.made.append(self)


class LaunchConfiguration(Recorded):
    def perform(self, context: types.SimpleNamespace) -> str:
        return context.launch_configurations[self.args[0]]


def run_launch_file(monkeypatch: pytest.MonkeyPatch, **arguments: str) -> list[Recorded]:
    """Run launch/hilserl.launch.py with `arguments` against recording stand-ins of launch and launch_ros
    (not installable here): the entities its OpaqueFunction returns (each Node, then its exit handler)."""
    modules = {
        "launch": {"LaunchContext": types.SimpleNamespace, "LaunchDescription": Recorded},
        "launch.actions": {"DeclareLaunchArgument": Recorded, "OpaqueFunction": Recorded,
                           "RegisterEventHandler": Recorded, "TimerAction": Recorded},
        "launch.event_handlers": {"OnProcessExit": Recorded},
        "launch.events.process": {"ProcessExited": types.SimpleNamespace},
        "launch.substitutions": {"LaunchConfiguration": LaunchConfiguration},
        "launch_ros.actions": {"Node": Node},
        "ament_index_python.packages": {"get_package_share_directory": lambda package: str(ROOT)},
    }
    for name, members in modules.items():
        monkeypatch.setitem(sys.modules, name, types.SimpleNamespace(**members))
    monkeypatch.setattr(Recorded, "made", [])
    spec = importlib.util.spec_from_file_location("hilserl_launch", LAUNCH)
    launch_file = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(launch_file)
    actions = launch_file.generate_launch_description().args[0]
    declared = {a.args[0]: a.kwargs["default_value"] for a in actions if "default_value" in a.kwargs}
    unknown = set(arguments) - set(declared)
    assert not unknown, f"launch arguments {unknown} are not declared"
    context = types.SimpleNamespace(launch_configurations={**declared, **arguments}, is_shutdown=False)
    return [entity for action in actions if "function" in action.kwargs
            for entity in action.kwargs["function"](context)]


def launch_nodes(monkeypatch: pytest.MonkeyPatch, **arguments: str) -> list[Recorded]:
    """The Node actions the launch file would start, in order."""
    return [e for e in run_launch_file(monkeypatch, **arguments) if isinstance(e, Node)]


def test_launch_file_names_installed_executables_and_configured_nodes(monkeypatch):
    executables = _setup_executables()
    config = yaml.safe_load((ROOT / "config" / "hilserl.yaml").read_text())
    nodes = launch_nodes(monkeypatch)
    assert [n.kwargs["executable"] for n in nodes] == ["camera_node", "reward_node", "preview_node"]
    for node in nodes:
        assert node.kwargs["package"] == "cam_guard"
        assert node.kwargs["executable"] in executables, f"{node.kwargs['executable']} is not a setup.py executable"
        key = f"/**/{node.kwargs['name']}"
        assert key in config, f"config/hilserl.yaml has no section {key} for node '{node.kwargs['name']}'"
        assert "ros__parameters" in config[key]
    camera = nodes[0].kwargs
    assert (camera["name"], camera["namespace"]) == ("camera", "/"), "one camera keeps today's names"
    assert camera["parameters"][1] == {}, "and the YAML's device"
    assert nodes[2].kwargs["parameters"][1] == {"show_window": False}, "'' arguments keep the YAML's values"


def test_launch_file_starts_the_cell_hilserl_graph_would(monkeypatch):
    nodes = launch_nodes(monkeypatch, cameras="front,wrist", devices="/dev/video0,0", threshold="1")
    expected = cell_nodes(parse_cell("front,wrist", "/dev/video0,0"))
    assert [(n.kwargs["executable"], n.kwargs["name"], n.kwargs["namespace"]) for n in nodes] == \
        [(e.executable, e.node_name, e.namespace) for e in expected]
    derived = [n.kwargs["parameters"][1] for n in nodes]
    assert derived[1] == {"device": "0"}, "device 0 stays a string"
    assert derived[2] == {"image_topics": ["/front/image_raw", "/wrist/image_raw"], "threshold": 1.0}, \
        "reward: model order, and the threshold as a double"
    single = launch_nodes(monkeypatch, device="/dev/null")
    assert single[0].kwargs["parameters"][1] == {"device": "/dev/null"}
    with pytest.raises(CellError, match="2 cameras"):
        launch_nodes(monkeypatch, cameras="front,wrist", devices="/dev/video0")


@pytest.mark.parametrize(("arguments", "message"), [
    ({"threshold": "abc"}, "launch argument threshold:=abc: parameter 'threshold' must be of type double"),
    ({"backend": "foo"}, "'backend' = 'foo' is not one of"),
    ({"device": "/no/such/file.mp4"}, "^/camera: device '/no/such/file.mp4'"),
    ({"cameras": "front", "devices": "/no/such/file.mp4"}, "^/front/camera: device"),
    ({"web_port": "99999"}, "'web_port' is out of range"),
])
def test_the_launch_file_starts_no_node_before_everything_is_checked(monkeypatch, arguments, message):
    with pytest.raises(ConfigError, match=message):
        run_launch_file(monkeypatch, **arguments)
    assert Recorded.made == [], "a node was built before the check (a camera would hold the device)"


def test_the_launch_file_restarts_a_node_only_after_a_crash(monkeypatch):
    entities = run_launch_file(monkeypatch)
    nodes = [e for e in entities if isinstance(e, Node)]
    assert all("respawn" not in n.kwargs for n in nodes), "launch_ros respawns whatever the exit code"
    handlers = [e.args[0] for e in entities if not isinstance(e, Node)]  # RegisterEventHandler(OnProcessExit(...))
    assert [h.kwargs["target_action"] for h in handlers] == nodes

    def exit_of(handler: Recorded, returncode: int, shutting_down: bool = False) -> Any:
        event = types.SimpleNamespace(returncode=returncode)
        return handler.kwargs["on_exit"](event, types.SimpleNamespace(is_shutdown=shutting_down))

    camera = handlers[0]
    assert exit_of(camera, 0) is None and exit_of(camera, 2) is None, "a clean exit, a configuration error"
    assert exit_of(camera, 3, shutting_down=True) is None, "Ctrl-C: the launch stops everything"
    [timer] = exit_of(camera, 3)  # the camera gave up: a fresh one, after a second
    assert timer.kwargs["period"] == 1.0
    again = timer.kwargs["actions"][0]
    assert (again.kwargs["executable"], again.kwargs["parameters"]) == ("camera_node", nodes[0].kwargs["parameters"])
    assert timer.kwargs["actions"][1].args[0].kwargs["target_action"] is again, "and it is watched the same way"


def test_every_executable_takes_over_ctrl_c_from_its_first_line():
    from cam_guard.common.startup import EXECUTABLES

    assert {name: target.split(":")[0] for name, target in _setup_executables().items()} == EXECUTABLES


def test_every_executable_is_a_plain_script_calling_its_main():
    for name, target in _setup_executables().items():
        module, func = target.split(":")
        script = ROOT / "bin" / name
        assert os.access(script, os.X_OK), f"bin/{name} is missing or not executable"
        code = [line for line in script.read_text().splitlines() if line and not line.startswith("#")]
        assert code == [f"from {module} import {func}", f"{func}()"], f"bin/{name}: {code}"


def test_every_executable_module_has_main():
    for target in _setup_executables().values():
        module, func = target.split(":")
        source = (ROOT / (module.replace(".", "/") + ".py")).read_text()
        assert f"def {func}(" in source, target


@pytest.mark.skipif(shutil.which("colcon") is None, reason="colcon not installed (pip install '.[test]')")
def test_colcon_builds_ament_python_package_with_launch_and_config(tmp_path):
    src = tmp_path / "src" / "cam_guard"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
        ".venv", ".git", "build", "install", "log", "__pycache__", "*.egg-info", ".pytest_cache", ".ruff_cache"))
    env = {**os.environ, "COLCON_HOME": str(tmp_path / "colcon_home")}
    listed = subprocess.run(["colcon", "list", "--base-paths", "src"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    assert "(ros.ament_python)" in listed.stdout, listed.stdout
    built = subprocess.run(["colcon", "build", "--base-paths", "src", "--event-handlers", "console_direct-"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    prefix = tmp_path / "install" / "cam_guard"
    for name in _setup_executables():
        exe = prefix / "lib" / "cam_guard" / name
        assert exe.is_file() and os.access(exe, os.X_OK), f"missing lib/cam_guard/{name}"
    share = prefix / "share" / "cam_guard"
    assert (share / "package.xml").is_file()
    assert (share / "launch" / "hilserl.launch.py").is_file()
    assert (share / "config" / "hilserl.yaml").is_file()
    assert (prefix / "share" / "ament_index" / "resource_index" / "packages" / "cam_guard").is_file()
    # The installed executable really runs (and reports a bad parameter the documented way).
    site = next((prefix / "lib").glob("python3*/site-packages"))
    run = subprocess.run([sys.executable, str(prefix / "lib" / "cam_guard" / "camera_node"),
                          "--ros-args", "-p", "width:=1"], env={**os.environ, "PYTHONPATH": str(site)},
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2, run.stdout + run.stderr
    assert "'width' is out of range" in run.stderr
