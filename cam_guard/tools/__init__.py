"""Command-line tools: `hilserl_graph` (the one-command graph) and `cam_guard_hz` (topic rate)."""
