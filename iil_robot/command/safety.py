"""Safety limits applied to every command before it reaches the arm.

- Velocity: the linear and the angular part are each scaled down, direction kept, so their
  norms stay within ``max_linear_speed`` and ``max_angular_speed``.
- Acceleration: the change from the previous command is bounded by ``max_*_accel`` times the
  time since it (at most one control period). A stop (all zero) is never delayed.
- Workspace: a box (in the command frame) and roll/pitch/yaw ranges of the end effector. Each
  linear component heading for a wall is limited so the arm can still stop before it, braking
  at ``linear_decel`` after a reaction time ``latency`` (``v^2 / (2 a) + v * latency <= d``),
  where ``d`` is what is left of the distance once the commands already sent but not yet seen in
  the pose (in flight, `iil_robot.command.in_flight`) have moved the arm on: the arm slows down
  smoothly and stops at the wall instead of being cut off there, and never moves further out
  once on or past it. The angular velocity is scaled down the same way when it turns an angle
  towards its limit. Without a fresh pose in the command frame the arm is held.

All functions are pure; the mux keeps the state (previous command, its time).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from iil_robot.data.actions import MAX_ANGULAR_SPEED, MAX_LINEAR_SPEED
from iil_robot.data.rotation import matrix_from_rotvec, rpy_from_matrix

Twist = tuple[float, float, float, float, float, float]
ZERO: Twist = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0)


class LimitsConfigError(ValueError):
    """A safety limit is out of range."""


FULL_RPY_MIN: tuple[float, float, float] = (0.0, -math.pi / 2, -math.pi)
"""Lowest roll (compared by its absolute value), pitch and yaw: a bound here is no bound."""
FULL_RPY_MAX: tuple[float, float, float] = (math.pi, math.pi / 2, math.pi)
"""Highest |roll|, pitch and yaw: a bound here is no bound (the angles wrap at these values)."""
RPY_TOLERANCE = 1e-3
"""A bound within this (rad) of the full range counts as the full range (3.1416 for pi is no limit)."""


@dataclass(frozen=True)
class WorkspaceBox:
    """Where the end effector may go: a box in the command frame and roll/pitch/yaw ranges."""

    enabled: bool = False
    """Whether to enforce the workspace (needs the EE pose topic)."""
    min_xyz: tuple[float, float, float] = (-1.0, -1.0, -1.0)
    """Lower corner (m)."""
    max_xyz: tuple[float, float, float] = (1.0, 1.0, 1.0)
    """Upper corner (m)."""
    min_rpy: tuple[float, float, float] = FULL_RPY_MIN
    """Lowest |roll|, pitch, yaw (rad; fixed axes x, y, z of the command frame). Roll is compared by its absolute
    value, as hil-serl's franka_env clips it: a tool pointing down sits at roll +-pi, where the sign flips."""
    max_rpy: tuple[float, float, float] = FULL_RPY_MAX
    """Highest |roll|, pitch, yaw (rad); a bound at pi (pi/2 for pitch) is none."""
    pose_timeout: float = 0.2
    """An EE pose older than this (s) is stale: the arm is held."""
    linear_decel: float = 1.0
    """Deceleration (m/s^2) the arm brakes at before a wall: at most what it can do."""
    angular_decel: float = 4.0
    """Angular deceleration (rad/s^2) the arm brakes at before an orientation limit."""
    latency: float = 0.15
    """Every delay (s) between a pose's measurement and the arm acting on a command sent in reply to it, beyond the
    two the mux adds itself (the pose's age since it arrived, and one control period): the pose's way from the
    arm's sensors to the mux, and the command's from the mux to the motors (driver, servo, network). The commands
    sent over all of it are taken to be in flight, still to move the arm beyond the pose, and the arm to keep a new
    command that long before braking: too small a value overshoots the limits."""

    def validate(self) -> None:
        for name in ("min_xyz", "max_xyz", "min_rpy", "max_rpy"):
            values = getattr(self, name)
            if len(values) != 3:
                raise LimitsConfigError(f"workspace {name} needs 3 values, got {list(values)}")
            if not all(math.isfinite(v) for v in values):
                raise LimitsConfigError(f"workspace {name}={list(values)} must be finite")
        if any(lo >= hi for lo, hi in zip(self.min_xyz, self.max_xyz)):
            raise LimitsConfigError(f"workspace min_xyz={self.min_xyz} must be below max_xyz={self.max_xyz} on every axis")
        for i, axis in enumerate(("|roll|", "pitch", "yaw")):
            lo, hi = self.min_rpy[i], self.max_rpy[i]
            if not FULL_RPY_MIN[i] - RPY_TOLERANCE <= lo < hi <= FULL_RPY_MAX[i] + RPY_TOLERANCE:
                raise LimitsConfigError(f"workspace {axis} range [{lo}, {hi}] must be increasing within "
                                        f"[{FULL_RPY_MIN[i]:.4f}, {FULL_RPY_MAX[i]:.4f}] rad")
        if self.pose_timeout <= 0.0:
            raise LimitsConfigError("workspace pose_timeout must be > 0 s")
        if not (self.linear_decel > 0.0 and self.angular_decel > 0.0):
            raise LimitsConfigError("workspace linear_decel and angular_decel must be > 0")
        if not (math.isfinite(self.latency) and self.latency >= 0.0):
            raise LimitsConfigError(f"workspace latency={self.latency} must be >= 0 s")


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
    """Optional workspace (box and orientation ranges) the end effector must stay in."""

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


def brake_speed(distance: float, decel: float, latency: float) -> float:
    """The largest speed from which the arm still stops within ``distance``: it keeps going for ``latency``
    seconds, then brakes at ``decel`` (``v^2 / (2 decel) + v latency = distance``); 0 on or past the limit."""
    if distance <= 0.0:
        return 0.0
    return -decel * latency + math.sqrt((decel * latency) ** 2 + 2.0 * decel * distance)


def limit_workspace(twist: Sequence[float], position: Sequence[float], rotation: np.ndarray, box: WorkspaceBox,
                    latency: float, in_flight: Sequence[float] = ZERO) -> Twist:
    """Brake the linear components heading for a wall and scale the angular part down when it turns an angle
    towards its limit, so the arm stops at both. ``latency`` (s) is every delay before the arm reacts: it is
    assumed to keep this command that long before braking. ``in_flight`` is the motion the commands sent over that
    time will still produce beyond the pose (displacement, m, and rotation vector, rad): the room left is measured
    from where they take the arm. Motion in flight away from a limit never adds room: the arm may not carry it out
    (held by a fault, lagging)."""
    ahead = [p + s for p, s in zip(position, in_flight[:3])]
    linear = list(twist[:3])
    for i in range(3):
        if linear[i] > 0.0:
            room = box.max_xyz[i] - max(position[i], ahead[i])
            linear[i] = min(linear[i], brake_speed(room, box.linear_decel, latency))
        elif linear[i] < 0.0:
            room = min(position[i], ahead[i]) - box.min_xyz[i]
            linear[i] = max(linear[i], -brake_speed(room, box.linear_decel, latency))
    angular = np.asarray(twist[3:], dtype=np.float64)
    scale = _orientation_scale(angular, rotation, in_flight[3:], box, latency)
    return tuple(linear) + tuple(float(w) * scale for w in angular)  # type: ignore[return-value]


def _orientation_scale(angular: np.ndarray, rotation: np.ndarray, turn: Sequence[float], box: WorkspaceBox,
                       latency: float) -> float:
    """Factor in [0, 1] for the angular velocity so that no limited angle turns faster than it can brake; the
    command acts once the arm has turned from ``rotation`` (measured) by ``turn`` (the rotation vector in flight)."""
    speed = float(np.linalg.norm(angular))
    if speed == 0.0:
        return 1.0
    ahead = matrix_from_rotvec(turn) @ rotation
    measured = limited_angles(rotation)
    angles = limited_angles(ahead)
    step = 1e-4  # rad along the rotation: the angles' rates by a finite difference
    after = limited_angles(matrix_from_rotvec(angular / speed * step) @ ahead)
    scale = 1.0
    for i, (then, now, later) in enumerate(zip(measured, angles, after)):
        rate = math.remainder(later - now, math.tau) / step * speed  # rad/s of this angle
        moved = math.remainder(now - then, math.tau)  # by the turn in flight
        low, high = _angle_bounds(box, i)
        if rate > 0.0 and high is not None:
            allowed = brake_speed(high - then - max(moved, 0.0), box.angular_decel, latency)
        elif rate < 0.0 and low is not None:
            allowed = brake_speed(then + min(moved, 0.0) - low, box.angular_decel, latency)
        else:
            continue
        scale = min(scale, allowed / abs(rate))
    return scale


def past_orientation_limit(rotation: np.ndarray, box: WorkspaceBox) -> float:
    """How far (rad) the end effector's |roll|, pitch or yaw lies past its nearest limit: negative within all of them
    (minus the distance to the nearest), -inf where no angle is limited."""
    past = -math.inf
    for i, angle in enumerate(limited_angles(rotation)):
        low, high = _angle_bounds(box, i)
        if high is not None:
            past = max(past, angle - high)
        if low is not None:
            past = max(past, low - angle)
    return past


def limited_angles(rotation: np.ndarray) -> tuple[float, float, float]:
    """The angles the workspace limits: |roll|, pitch, yaw (rad) of an orientation in the command frame."""
    roll, pitch, yaw = rpy_from_matrix(rotation)
    return abs(roll), pitch, yaw


def _angle_bounds(box: WorkspaceBox, i: int) -> tuple[float | None, float | None]:
    """The lower and upper limit of limited angle ``i``; None where the range is full (no limit)."""
    low = box.min_rpy[i] if box.min_rpy[i] > FULL_RPY_MIN[i] + RPY_TOLERANCE else None
    high = box.max_rpy[i] if box.max_rpy[i] < FULL_RPY_MAX[i] - RPY_TOLERANCE else None
    return low, high
