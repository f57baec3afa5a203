"""Reward: success classifiers (colour rule, ONNX, LeRobot) and the preprocessing LeRobot trained them with.

No ROS here: reward_node feeds them frames and publishes what they return.
"""
