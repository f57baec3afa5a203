"""Preview: what the operator sees, drawn from frames and reward samples. No ROS here."""
