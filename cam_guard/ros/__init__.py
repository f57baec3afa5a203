"""ROS plumbing shared by the nodes: process runtime, QoS and Fast DDS transport, message conversion,
camera info and diagnostics."""
