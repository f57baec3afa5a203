"""Capture: the worker process that owns the camera, the sources it opens, and the watchdog that replaces it.

No ROS here: camera_node wires a CaptureSupervisor to its publishers.
"""
