"""Fault tooling that tests, benchmarks and users rehearsing faults import: a misbehaving MJPEG server and
a harness that starts node processes and watches their topics."""
