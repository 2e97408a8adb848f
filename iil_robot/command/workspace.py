"""The workspace an operator jogs the arm through, turned into the mux's workspace parameters.

``iil-robot workspace record`` feeds every end-effector pose to a :class:`WorkspaceExtent`; it
keeps the running minimum and maximum of the position and of |roll|, pitch, yaw (the angles the
mux limits, `iil_robot.command.safety.WorkspaceBox`), and writes them, widened by a margin, as a
parameter overlay for a robot profile.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from iil_robot.command.safety import FULL_RPY_MAX, FULL_RPY_MIN, limited_angles
from iil_robot.data.rotation import matrix_from_quaternion

__all__ = ["WorkspaceExtent"]


@dataclass
class WorkspaceExtent:
    """Running bounds of the poses seen in one frame."""

    frame_id: str
    """The command frame: poses in any other frame are refused."""
    count: int = 0
    """Poses taken."""
    refused: dict[str, int] = field(default_factory=dict)
    """Why poses were refused -> how many."""
    low: np.ndarray = field(default_factory=lambda: np.full(6, np.inf))
    """x, y, z (m), |roll|, pitch, yaw (rad): the lowest seen."""
    high: np.ndarray = field(default_factory=lambda: np.full(6, -np.inf))
    """The highest seen."""

    def add(self, xyz: Sequence[float], xyzw: Sequence[float], frame_id: str) -> str | None:
        """Take one pose; an error message (and nothing taken) for one in another frame or malformed."""
        if frame_id != self.frame_id:
            return self._refuse(f"pose in frame {frame_id!r}, not the command frame {self.frame_id!r}")
        position = np.asarray(xyz, dtype=np.float64)
        if position.shape != (3,) or not np.all(np.isfinite(position)):
            return self._refuse("position is not 3 finite numbers")
        try:
            angles = limited_angles(matrix_from_quaternion(xyzw))
        except ValueError as err:
            return self._refuse(str(err))
        values = np.concatenate([position, angles])
        self.low, self.high = np.minimum(self.low, values), np.maximum(self.high, values)
        self.count += 1
        return None

    def line(self) -> str:
        """The running bounds on one line (for the operator watching)."""
        if not self.count:
            return f"no pose in {self.frame_id} yet"
        xyz = "  ".join(f"{a} {lo:+.3f}..{hi:+.3f}" for a, lo, hi in zip("xyz", self.low[:3], self.high[:3]))
        rpy = "  ".join(f"{a} {lo:+.2f}..{hi:+.2f}" for a, lo, hi in zip(("|roll|", "pitch", "yaw"), self.low[3:], self.high[3:]))
        return f"{self.count} poses  {xyz} m  {rpy} rad"

    def parameters(self, margin: float, angle_margin: float) -> dict[str, dict[str, object]]:
        """Node -> parameters for a robot profile: the box widened by ``margin`` (m) on every side, the angle ranges by
        ``angle_margin`` (rad, a range reaching an angle's full extent is no limit).

        Raises:
            ValueError: before the first pose.
        """
        if not self.count:
            raise ValueError(f"no end-effector pose in {self.frame_id} was seen: nothing to write")
        low_xyz = [round(float(v) - margin, 3) for v in self.low[:3]]
        high_xyz = [round(float(v) + margin, 3) for v in self.high[:3]]
        low_rpy = [round(max(float(v) - angle_margin, full), 4) for v, full in zip(self.low[3:], FULL_RPY_MIN)]
        high_rpy = [round(min(float(v) + angle_margin, full), 4) for v, full in zip(self.high[3:], FULL_RPY_MAX)]
        # rounding may step just past the full range: keep it inside, where the mux reads it as no limit
        low_rpy = [max(v, math.ceil(full * 1e4) / 1e4) for v, full in zip(low_rpy, FULL_RPY_MIN)]
        high_rpy = [min(v, math.floor(full * 1e4) / 1e4) for v, full in zip(high_rpy, FULL_RPY_MAX)]
        return {
            "mux": {"workspace.enabled": True, "workspace.min_xyz": low_xyz, "workspace.max_xyz": high_xyz,
                    "workspace.min_rpy": low_rpy, "workspace.max_rpy": high_rpy},
            "episode_manager": {"workspace_min": low_xyz, "workspace_max": high_xyz},
        }

    def _refuse(self, why: str) -> str:
        self.refused[why] = self.refused.get(why, 0) + 1
        return why
