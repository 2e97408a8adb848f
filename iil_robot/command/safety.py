"""Safety limits applied to every command before it reaches the arm.

- Velocity: the linear and the angular part are each scaled down, direction kept, so their
  norms stay within ``max_linear_speed`` and ``max_angular_speed``.
- Acceleration: the change from the previous command is bounded by ``max_*_accel`` times the
  time since it (at most one control period). A stop (all zero) is never delayed.
- Workspace box: with a fresh end-effector position, a linear component that would push the
  end effector further out of the box is zeroed. Without a fresh position the arm is held.

All functions are pure; the mux keeps the state (previous command, its time).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from iil_robot.data.actions import MAX_ANGULAR_SPEED, MAX_LINEAR_SPEED

Twist = tuple[float, float, float, float, float, float]
ZERO: Twist = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0)


class LimitsConfigError(ValueError):
    """A safety limit is out of range."""


@dataclass(frozen=True)
class WorkspaceBox:
    """Axis-aligned box (in the command frame) the end effector must stay inside."""

    enabled: bool = False
    """Whether to enforce the box (needs the EE pose topic)."""
    min_xyz: tuple[float, float, float] = (-1.0, -1.0, -1.0)
    """Lower corner (m)."""
    max_xyz: tuple[float, float, float] = (1.0, 1.0, 1.0)
    """Upper corner (m)."""
    pose_timeout: float = 0.2
    """An EE pose older than this (s) is stale: the arm is held."""

    def validate(self) -> None:
        if len(self.min_xyz) != 3 or len(self.max_xyz) != 3:
            raise LimitsConfigError("workspace min_xyz and max_xyz need 3 values each (x, y, z)")
        if not all(math.isfinite(v) for v in (*self.min_xyz, *self.max_xyz)):
            raise LimitsConfigError("workspace corners must be finite")
        if any(lo >= hi for lo, hi in zip(self.min_xyz, self.max_xyz)):
            raise LimitsConfigError(f"workspace min_xyz={self.min_xyz} must be below max_xyz={self.max_xyz} on every axis")
        if self.pose_timeout <= 0.0:
            raise LimitsConfigError("workspace pose_timeout must be > 0 s")


@dataclass(frozen=True)
class Limits:
    """Velocity and acceleration limits of the arm command."""

    max_linear_speed: float = MAX_LINEAR_SPEED
    """Largest linear speed (m/s) the arm may be commanded."""
    max_angular_speed: float = MAX_ANGULAR_SPEED
    """Largest angular speed (rad/s) the arm may be commanded."""
    max_linear_accel: float = 2.0
    """Largest change of linear velocity (m/s^2); 0 disables the acceleration limit."""
    max_angular_accel: float = 8.0
    """Largest change of angular velocity (rad/s^2); 0 disables the acceleration limit."""
    workspace: WorkspaceBox = WorkspaceBox()
    """Optional box the end effector must stay in."""

    def validate(self) -> None:
        for name in ("max_linear_speed", "max_angular_speed"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0.0):
                raise LimitsConfigError(f"{name}={value} must be a finite speed > 0")
        for name in ("max_linear_accel", "max_angular_accel"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0.0):
                raise LimitsConfigError(f"{name}={value} must be finite and >= 0 (0 = no limit)")
        self.workspace.validate()


def _norm(values: Sequence[float]) -> float:
    return math.sqrt(sum(v * v for v in values))


def _clamp_norm(values: Sequence[float], limit: float) -> tuple[float, ...]:
    norm = _norm(values)
    if norm <= limit:
        return tuple(values)
    return tuple(v * (limit / norm) for v in values)


def limit_velocity(twist: Sequence[float], limits: Limits) -> Twist:
    """Scale the linear and angular parts down to their speed limits, keeping direction."""
    return _clamp_norm(twist[:3], limits.max_linear_speed) + _clamp_norm(twist[3:], limits.max_angular_speed)  # type: ignore[return-value]


def limit_acceleration(twist: Sequence[float], previous: Sequence[float], dt: float, limits: Limits) -> Twist:
    """Bound the change from ``previous`` over ``dt`` seconds; a full stop passes unchanged."""
    if all(v == 0.0 for v in twist):
        return ZERO
    out: list[float] = []
    for part, (lo, hi), accel in ((slice(0, 3), (0, 3), limits.max_linear_accel),
                                  (slice(3, 6), (3, 6), limits.max_angular_accel)):
        target = twist[part]
        if accel <= 0.0:
            out.extend(target)
            continue
        before = previous[lo:hi]
        delta = [t - b for t, b in zip(target, before)]
        step = accel * max(dt, 0.0)
        if _norm(delta) <= step:
            out.extend(target)  # within the limit: exactly the target, not before + (target - before)
        else:
            out.extend(b + d for b, d in zip(before, _clamp_norm(delta, step)))
    return tuple(out)  # type: ignore[return-value]


def limit_workspace(twist: Sequence[float], position: Sequence[float], box: WorkspaceBox) -> Twist:
    """Zero each linear component that points out of the box from a position on or past its wall."""
    linear = list(twist[:3])
    for i in range(3):
        if position[i] >= box.max_xyz[i] and linear[i] > 0.0:
            linear[i] = 0.0
        elif position[i] <= box.min_xyz[i] and linear[i] < 0.0:
            linear[i] = 0.0
    return tuple(linear) + tuple(twist[3:])  # type: ignore[return-value]
