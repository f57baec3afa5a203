"""Plain helpers the parts share (no ROS): the shared-memory frame ring, newest-value slots, rate meters,
child-process lifetime and the fork audit."""
