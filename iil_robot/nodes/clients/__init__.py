"""ROS helpers that nodes and commands use, not nodes themselves: the mux's gripper output, a parameter reader, a
pose listener."""
