"""The task state that the scripted expert and the progress value reason about.

Everything here is read from the flat observation vector, so the same code runs next to the
simulator and in a separate operator process that only sees the published poses.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from iil_robot.sim.spec import TaskSpec


@dataclass(frozen=True)
class TaskState:
    """Positions that matter for solving a Fetch task (world frame, metres)."""

    grip_pos: np.ndarray
    """Gripper site position, shape (3,)."""
    finger_opening: float
    """Sum of both finger joints [m]: about 0.1 fully open, 0 shut, ~0.05 around the block."""
    goal: np.ndarray
    """Desired goal, shape (3,): where the gripper (reach) or the block (push, pick) must go."""
    object_pos: np.ndarray | None = None
    """Block centre, shape (3,), or None for reach."""

    @classmethod
    def from_obs(cls, obs: np.ndarray, task: TaskSpec) -> TaskState:
        """Parse a flat observation of ``task``.

        Raises:
            ValueError: if ``obs`` does not have the task's observation size.
        """
        obs = np.asarray(obs, dtype=np.float64)
        layout = task.layout
        if obs.shape != (layout.size,):
            raise ValueError(f"{task.name} observation must have shape ({layout.size},), got {obs.shape}")
        object_pos = obs[layout.object_pos].copy() if layout.object_pos is not None else None
        return cls(
            grip_pos=obs[layout.grip_pos].copy(),
            finger_opening=float(obs[layout.gripper_state].sum()),
            goal=obs[layout.goal].copy(),
            object_pos=object_pos,
        )

    @property
    def achieved_goal(self) -> np.ndarray:
        """What must reach the goal: the block if there is one, else the gripper."""
        return self.grip_pos if self.object_pos is None else self.object_pos

    def goal_distance(self) -> float:
        """Distance from the achieved goal to the desired goal [m]."""
        return float(np.linalg.norm(self.achieved_goal - self.goal))
