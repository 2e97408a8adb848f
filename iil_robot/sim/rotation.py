"""Quaternion arithmetic for the simulated arm's end-effector orientation (w, x, y, z, as MuJoCo stores them).

The simulated arm integrates a commanded angular velocity (rad/s, in the base frame, which has the world's
axes) into a target orientation for the gripper, bounded in angle from its start orientation.
"""
from __future__ import annotations

import numpy as np

__all__ = ["angle_between", "integrate", "multiply", "rotation_vector", "turn_back"]


def multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The Hamilton product a ⊗ b of two (w, x, y, z) quaternions."""
    aw, ax, ay, az = a
    bw, bx, by, bz = b
    return np.array([aw * bw - ax * bx - ay * by - az * bz, aw * bx + ax * bw + ay * bz - az * by,
                     aw * by - ax * bz + ay * bw + az * bx, aw * bz + ax * by - ay * bx + az * bw])


def integrate(quaternion: np.ndarray, angular_velocity: np.ndarray, dt: float) -> np.ndarray:
    """``quaternion`` turned by ``angular_velocity`` (rad/s, in the fixed frame) for ``dt`` seconds; unit length."""
    rotation = np.asarray(angular_velocity, dtype=float) * dt
    angle = float(np.linalg.norm(rotation))
    if angle == 0.0:
        return np.asarray(quaternion, dtype=float) / np.linalg.norm(quaternion)
    step = np.concatenate([[np.cos(angle / 2)], np.sin(angle / 2) * rotation / angle])
    out = multiply(step, quaternion)  # a fixed-frame rotation multiplies from the left
    return out / np.linalg.norm(out)


def rotation_vector(frm: np.ndarray, to: np.ndarray) -> np.ndarray:
    """The rotation (axis × angle, rad, fixed frame) that turns orientation ``frm`` into ``to``; the short way."""
    frm, to = np.asarray(frm, dtype=float), np.asarray(to, dtype=float)
    delta = multiply(to, frm * np.array([1.0, -1.0, -1.0, -1.0]))  # to ⊗ frm⁻¹
    delta /= np.linalg.norm(delta)
    if delta[0] < 0:
        delta = -delta
    sin_half = float(np.linalg.norm(delta[1:]))
    if sin_half < 1e-12:
        return np.zeros(3)
    return delta[1:] / sin_half * 2.0 * np.arctan2(sin_half, delta[0])


def angle_between(a: np.ndarray, b: np.ndarray) -> float:
    """The angle (rad) of the rotation between two orientations."""
    return float(np.linalg.norm(rotation_vector(a, b)))


def turn_back(current: np.ndarray, target: np.ndarray, gain: float, max_speed: float, tolerance: float) -> np.ndarray:
    """The angular velocity (rad/s, fixed frame) that turns ``current`` back towards ``target``: ``gain`` (1/s) times
    the rotation between them, at most ``max_speed``; zero within ``tolerance`` (rad), so that a gripper at its
    orientation gets no command at all."""
    error = rotation_vector(current, target)
    angle = float(np.linalg.norm(error))
    if angle <= tolerance:
        return np.zeros(3)
    return error * min(gain, max_speed / angle)
