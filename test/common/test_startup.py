"""Which processes take over Ctrl-C from their first line (pure logic; the behaviour is in test_stopping)."""

from cam_guard.common.startup import EXECUTABLES, executable_module


def test_every_form_of_starting_an_executable_is_recognised():
    assert executable_module(["python3", "-m", "cam_guard.camera_node", "--ros-args"]) == "cam_guard.camera_node"
    assert executable_module(["python3", "-u", "-X", "dev", "-m", "cam_guard.capture.worker"]) \
        == "cam_guard.capture.worker"
    assert executable_module(["/usr/bin/python3", "/ws/install/cam_guard/lib/cam_guard/reward_node", "-m", "x"]) \
        == "cam_guard.reward_node"  # a console script (colcon, pip); its own '-m' argument is not Python's
    assert executable_module(["/venv/bin/python", "/venv/bin/hilserl_graph"]) == "cam_guard.tools.graph_launcher"


def test_a_program_that_only_imports_cam_guard_is_left_alone():
    assert executable_module(["python3", "train.py", "--policy", "sac"]) is None
    assert executable_module(["python3", "-c", "import cam_guard", "-m", "cam_guard.camera_node"]) is None
    assert executable_module(["python3"]) is None
    assert executable_module(["python3", "-m", "pytest"]) == "pytest"  # not one of ours: prepare_process ignores it
    assert "pytest" not in EXECUTABLES.values()
