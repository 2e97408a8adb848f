"""What the sim arm reports, in the shapes a real arm's drivers publish them.

Frames: everything is in Fetch's world frame ("world"). The robot base (``base_link``) sits at
a fixed offset in it with the same axes, so an EE twist in the base frame is the same
numbers in the world frame. Quaternions are (x, y, z, w), as in ROS messages.
"""
from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

__all__ = ["JointStates", "Pose", "ScenePoses", "read_joint_states", "read_poses"]

FRAME = "world"
_PREFIX = "robot0:"
_BASE_SLIDES = ("robot0:slide0", "robot0:slide1", "robot0:slide2")  # the fixed mobile base


@dataclass(frozen=True)
class JointStates:
    """The arm's joints (as sensor_msgs/JointState carries them)."""

    names: tuple[str, ...]
    """Joint names without Fetch's "robot0:" prefix, e.g. "shoulder_pan_joint"."""
    position: np.ndarray
    """Joint positions [rad or m]."""
    velocity: np.ndarray
    """Joint velocities [rad/s or m/s]."""


@dataclass(frozen=True)
class Pose:
    """A position [m] and an orientation quaternion (x, y, z, w) in `FRAME`."""

    position: np.ndarray
    orientation: np.ndarray


@dataclass(frozen=True)
class ScenePoses:
    """The poses the sim arm publishes."""

    ee: Pose
    """Gripper site (between the fingertips)."""
    goal: Pose
    """Desired goal (identity orientation)."""
    object: Pose | None
    """The block, or None in reach."""
    frame: str = FRAME


def read_joint_states(model: mujoco.MjModel, data: mujoco.MjData) -> JointStates:
    """The robot's joints except the fixed base slides."""
    names, position, velocity = [], [], []
    for j in range(model.njnt):
        name = model.joint(j).name
        if not name.startswith(_PREFIX) or name in _BASE_SLIDES:
            continue
        names.append(name[len(_PREFIX):])
        position.append(data.qpos[model.jnt_qposadr[j]])
        velocity.append(data.qvel[model.jnt_dofadr[j]])
    return JointStates(tuple(names), np.array(position), np.array(velocity))


def read_poses(model: mujoco.MjModel, data: mujoco.MjData, goal: np.ndarray, has_object: bool) -> ScenePoses:
    """EE, goal and block poses from the simulator state."""
    site = model.site("robot0:grip").id
    ee = Pose(data.site_xpos[site].copy(), _xyzw_from_matrix(data.site_xmat[site]))
    block = None
    if has_object:
        body = model.body("object0").id
        block = Pose(data.xpos[body].copy(), _xyzw(data.xquat[body]))
    return ScenePoses(ee=ee, goal=Pose(np.array(goal, dtype=float), np.array([0.0, 0.0, 0.0, 1.0])), object=block)


def _xyzw_from_matrix(matrix: np.ndarray) -> np.ndarray:
    wxyz = np.empty(4)
    mujoco.mju_mat2Quat(wxyz, np.asarray(matrix, dtype=np.float64).ravel())
    return _xyzw(wxyz)


def _xyzw(wxyz: np.ndarray) -> np.ndarray:
    return np.array([wxyz[1], wxyz[2], wxyz[3], wxyz[0]])
