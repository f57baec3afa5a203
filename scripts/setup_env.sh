#!/usr/bin/env bash
# Create .venv with cam_guard and ROS 2 Kilted from PyPI (idempotent). Sourced by demo.sh/test.sh;
# `source scripts/setup_env.sh test` also installs what the tests need (ruff, pytest, colcon,
# onnx/onnxruntime, and LeRobot 0.4.4 with torch for the plugin, reward-classifier and gym_manipulator tests).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${CAM_GUARD_VENV:-$root/.venv}"
python="${PYTHON:-python3.11}"
command -v "$python" >/dev/null 2>&1 || python=python3
flavor="${1:-run}"
stamp="$venv/.cam_guard-installed-$flavor"
if [ ! -f "$stamp" ] || [ "$root/setup.py" -nt "$stamp" ] || [ "$0" -nt "$stamp" ] \
   || [ "$root/scripts/apt-packages.txt" -nt "$stamp" ] \
   || [ "$root/lerobot_plugin/requirements-lerobot.txt" -nt "$stamp" ]; then
  if [ "$flavor" = test ] && [ ! -x "$venv/bin/python" ]; then
    # A fresh test venv is about 7 GB (PyTorch's CUDA build alone is 5.5 GB): say so at once,
    # not as pip's "No space left on device" halfway through.
    free_kb=$(df -Pk "$(dirname "$venv")" 2>/dev/null | awk 'NR==2 {print $4}') || free_kb=""  # no folder yet
    if [ -n "$free_kb" ] && [ "$free_kb" -lt $((8 * 1024 * 1024)) ]; then
      echo "cam_guard: the test set-up needs about 8 GB free for $venv; only $((free_kb / 1024)) MB are free there" >&2
      return 1 2>/dev/null || exit 1  # sourced (demo.sh, test.sh, a shell) or run
    fi
  fi
  [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip
  if [ "$flavor" = test ]; then
    bash "$root/scripts/system_packages.sh"
    "$venv/bin/pip" install -q -e "$root[ros-wheels,test]"
    # LeRobot 0.4.4 for real (camera API, reward classifier, gym_manipulator). torch/torchvision:
    # a matching pair (CPU is enough) that pip takes from this machine's disk; lerobot's own pin
    # (torch<2.11) would download 4 GB more, so lerobot goes in without deps, then its other
    # requirements as it pins them. The plugin is installed the way users do.
    "$venv/bin/pip" install -q --no-warn-conflicts torch==2.14.1 torchvision==0.29.1 "setuptools>=77.0.3,<80"  # colcon: <80
    "$venv/bin/pip" install -q --no-deps "lerobot==0.4.4"
    "$venv/bin/pip" install -q --no-warn-conflicts -r "$root/lerobot_plugin/requirements-lerobot.txt"
    "$venv/bin/pip" install -q --no-deps -e "$root/lerobot_plugin"
  else
    "$venv/bin/pip" install -q -e "$root[ros-wheels]"
  fi
  touch "$stamp"
fi
export PATH="$venv/bin:$PATH"
# ament_index lookups (get_package_share_directory) search the venv prefix.
export AMENT_PREFIX_PATH="$venv${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
# Keep DDS on this machine unless the user chose otherwise.
export ROS_AUTOMATIC_DISCOVERY_RANGE="${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}"
