#!/usr/bin/env bash
# Set up (first run only) and run the whole test suite: lint, unit, real-process ROS 2 tests.
set -euo pipefail
source "$(dirname "$0")/setup_env.sh" test
cd "$(dirname "$0")/.."
ruff check .
exec python -m pytest -q "$@"
