#!/usr/bin/env bash
# Create .venv with cam_guard and ROS 2 Kilted from PyPI (idempotent). Sourced by demo.sh/test.sh;
# `source scripts/setup_env.sh test` also installs what the tests need (ruff, pytest, colcon,
# onnx/onnxruntime, and lerobot 0.4.4 without its heavy dependencies for the bridge tests).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${CAM_GUARD_VENV:-$root/.venv}"
python="${PYTHON:-python3.11}"
command -v "$python" >/dev/null 2>&1 || python=python3
flavor="${1:-run}"
stamp="$venv/.cam_guard-installed-$flavor"
if [ ! -f "$stamp" ] || [ "$root/setup.py" -nt "$stamp" ] || [ "$0" -nt "$stamp" ] \
   || [ "$root/scripts/apt-packages.txt" -nt "$stamp" ]; then
  [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip
  if [ "$flavor" = test ]; then
    bash "$root/scripts/system_packages.sh"
    "$venv/bin/pip" install -q -e "$root[ros-wheels,test]"
    # The LeRobot camera API needs only draccus; lerobot's own requirements (torch, datasets, …)
    # are for training, so they are left out here. The plugin is installed the way users do.
    "$venv/bin/pip" install -q --no-deps "lerobot==0.4.4"
    "$venv/bin/pip" install -q "draccus==0.10.0" gymnasium
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
