"""When a probability counts as success: LeRobot's rule, so cam_guard and LeRobot agree on every frame."""


def is_success(probability: float, threshold: float) -> bool:
    """`probability > threshold`, as LeRobot's Classifier.predict_reward: a tie is not a success."""
    return probability > threshold
