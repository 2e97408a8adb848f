import os

# Headless rendering; must be set before mujoco is first imported.
os.environ.setdefault("MUJOCO_GL", "egl")
