"""The package builds with colcon as ament_python, and launch/ names only what it installs."""

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
LAUNCH = ROOT / "launch" / "hilserl.launch.py"


def _setup_executables() -> dict[str, str]:
    """setup.py's EXECUTABLES table: executable name -> module:function."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "EXECUTABLES":
            return ast.literal_eval(node.value)
    raise AssertionError("setup.py has no EXECUTABLES table")


def _launch_nodes() -> list[dict[str, str]]:
    nodes = []
    for call in ast.walk(ast.parse(LAUNCH.read_text())):
        if isinstance(call, ast.Call) and getattr(call.func, "id", "") == "Node":
            nodes.append({kw.arg: kw.value.value for kw in call.keywords
                          if isinstance(kw.value, ast.Constant) and kw.arg})
    return nodes


def test_launch_file_names_installed_executables_and_configured_nodes():
    executables = _setup_executables()
    config = yaml.safe_load((ROOT / "config" / "hilserl.yaml").read_text())
    nodes = _launch_nodes()
    assert nodes, "launch file starts no Node"
    for node in nodes:
        assert node["package"] == "cam_guard"
        assert node["executable"] in executables, f"{node['executable']} is not a setup.py executable"
        assert node["name"] in config, f"config/hilserl.yaml has no section for node '{node['name']}'"
        assert "ros__parameters" in config[node["name"]]


def test_every_executable_takes_over_ctrl_c_from_its_first_line():
    from cam_guard.common.startup import EXECUTABLES

    assert {name: target.split(":")[0] for name, target in _setup_executables().items()} == EXECUTABLES


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
