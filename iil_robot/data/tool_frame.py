"""Actions relative to the end effector (``action.frame: tool``): between the command frame and the tool's.

A tool-frame action holds its linear and angular velocity in the end effector's frame; in the command
frame they are ``R v``, with ``R`` the end effector's orientation in the command frame, read from the
observation's orientation field (kind ``orientation``: a quaternion x y z w). The policy node turns its
action into the command frame (``from_tool``); the labels turn the executed action (and the policy's
proposal) back into the tool frame (``to_tool``) with the orientation of the same step, so learner and
policy agree. The gripper is never rotated.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from iil_robot.data.rotation import matrix_from_quaternion

__all__ = ["QUATERNION", "from_tool", "orientation_indices", "rotation_at", "to_tool"]

QUATERNION = ("qx", "qy", "qz", "qw")
"""Component names of an orientation field (the observer's field kind ``orientation``), in order."""


def orientation_indices(fields: Sequence[str], name: str) -> tuple[int, int, int, int]:
    """Positions of the orientation field ``name`` (``name.qx`` ... ``name.qw``) in an observation layout.

    Raises:
        ValueError: the layout lacks one of them (or names no fields), naming the parameters that fix it.
    """
    wanted = [f"{name}.{c}" for c in QUATERNION]
    missing = [w for w in wanted if w not in fields]
    if missing:
        has = "names no fields" if not fields else f"has no {missing}"
        raise ValueError(f"action.frame tool needs the end effector's orientation in the observation, but its layout {has}: "
                         f"add an orientation field {name!r} to the observer (fields.{name}.kind: orientation, topic: the "
                         f"end effector's pose), or set action.orientation_field to the observation's orientation field")
    return tuple(list(fields).index(w) for w in wanted)  # type: ignore[return-value]


def rotation_at(observation: Sequence[float] | None, indices: Sequence[int]) -> np.ndarray | None:
    """The end effector's orientation (3x3, tool -> command frame) in ``observation``; None without an observation
    long enough or where the quaternion is no rotation (zero length)."""
    if observation is None or not indices or max(indices) >= len(observation):
        return None
    try:
        return matrix_from_quaternion([observation[i] for i in indices])
    except ValueError:
        return None


def _rotate(actions: np.ndarray, rotations: np.ndarray) -> np.ndarray:
    out = np.array(actions, dtype=np.float64)
    out[..., 0:3] = np.einsum("...ij,...j->...i", rotations, out[..., 0:3])
    out[..., 3:6] = np.einsum("...ij,...j->...i", rotations, out[..., 3:6])
    return out


def from_tool(actions: np.ndarray, rotations: np.ndarray) -> np.ndarray:
    """[..., 7] tool-frame record actions -> the command frame, by [..., 3, 3] orientations (tool -> command)."""
    return _rotate(actions, np.asarray(rotations))


def to_tool(actions: np.ndarray, rotations: np.ndarray) -> np.ndarray:
    """[..., 7] command-frame record actions -> the tool frame (the inverse of ``from_tool``)."""
    return _rotate(actions, np.swapaxes(np.asarray(rotations), -1, -2))
