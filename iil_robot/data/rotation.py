"""Rotations as 3x3 matrices: from ROS quaternions, to roll/pitch/yaw, and small helpers.

Conventions are ROS's: quaternions are (x, y, z, w) as in ``geometry_msgs/Quaternion``; roll,
pitch, yaw are fixed-axis rotations about x, then y, then z (``R = Rz(yaw) Ry(pitch) Rx(roll)``,
tf2's ``getRPY``, scipy's ``as_euler("xyz")``).
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

__all__ = ["IDENTITY", "matrix_from_quaternion", "matrix_from_rotvec", "quaternion_in_frame", "rpy_from_matrix", "yaw_matrix"]

IDENTITY = np.eye(3)


def matrix_from_quaternion(xyzw: Sequence[float]) -> np.ndarray:
    """Rotation matrix of a quaternion (x, y, z, w); it is normalised first.

    Raises:
        ValueError: if it is not 4 finite numbers or has (near) zero length.
    """
    x, y, z, w = _unit(xyzw)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def quaternion_in_frame(reference_xyzw: Sequence[float], xyzw: Sequence[float]) -> tuple[float, float, float, float]:
    """The orientation ``xyzw`` as seen from the frame whose orientation is ``reference_xyzw`` (both in one parent
    frame): ``conj(reference) * q``, both normalised first.

    Raises:
        ValueError: if either is not 4 finite numbers or has (near) zero length.
    """
    (ax, ay, az, aw), (bx, by, bz, bw) = (_unit(reference_xyzw), _unit(xyzw))
    ax, ay, az = -ax, -ay, -az
    return (aw * bx + ax * bw + ay * bz - az * by, aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw, aw * bw - ax * bx - ay * by - az * bz)


def _unit(xyzw: Sequence[float]) -> np.ndarray:
    q = np.asarray(xyzw, dtype=np.float64)
    if q.shape != (4,) or not np.all(np.isfinite(q)):
        raise ValueError(f"quaternion must be 4 finite numbers (x, y, z, w), got {list(np.ravel(q))}")
    norm = float(np.linalg.norm(q))
    if norm < 1e-6:
        raise ValueError(f"quaternion {q.tolist()} has zero length: not an orientation")
    return q / norm


def rpy_from_matrix(matrix: np.ndarray) -> tuple[float, float, float]:
    """Roll, pitch, yaw (rad) of a rotation matrix; pitch in [-pi/2, pi/2], roll and yaw in [-pi, pi]."""
    m = matrix
    pitch = math.asin(max(-1.0, min(1.0, -float(m[2, 0]))))
    return math.atan2(float(m[2, 1]), float(m[2, 2])), pitch, math.atan2(float(m[1, 0]), float(m[0, 0]))


def matrix_from_rotvec(rotvec: Sequence[float]) -> np.ndarray:
    """Rotation by ``|rotvec|`` radians about ``rotvec`` (Rodrigues)."""
    v = np.asarray(rotvec, dtype=np.float64)
    angle = float(np.linalg.norm(v))
    if angle < 1e-12:
        return IDENTITY.copy()
    k = v / angle
    cross = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    return IDENTITY + math.sin(angle) * cross + (1.0 - math.cos(angle)) * cross @ cross


def yaw_matrix(yaw: float) -> np.ndarray:
    """Rotation by ``yaw`` radians about z."""
    c, s = math.cos(yaw), math.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
