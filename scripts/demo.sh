#!/usr/bin/env bash
# Set up (first run only) and start the camera → reward → preview graph. Ctrl-C stops it.
# With no camera attached it streams the built-in synthetic source. Extra arguments go to
# hilserl_graph, e.g. `bash scripts/demo.sh --set camera.device=/dev/video0`.
set -euo pipefail
source "$(dirname "$0")/setup_env.sh"
exec hilserl_graph "$@"
