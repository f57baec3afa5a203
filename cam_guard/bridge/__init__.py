"""The LeRobot bridge: the client a trainer imports (no rclpy, no threads) and the exec'd helper process
that subscribes and writes frames and rewards into shared memory."""
