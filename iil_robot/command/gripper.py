"""From the mux's gripper closure to a gripper driver's goal, without ROS.

The mux decides a closure in [0, 1] each tick (0 open, 1 closed; it is what step records
hold). A gripper driver wants something else: a ros2_control position controller a position
(``std_msgs/Float64MultiArray``), ``control_msgs/action/GripperCommand`` a position and an
effort, the Franka hand a ``franka_msgs/action/Move`` to open and a ``Grasp`` to close.

:class:`Gripper` turns closures into targets and says when one must be sent:

- ``binary``: open or closed, with hysteresis (closes above ``close_above``, opens below
  ``open_below``), so a closure hovering near one threshold does not chatter the fingers;
- ``continuous``: the closure mapped linearly between the open and closed positions, sent
  again once it moved by ``min_change``.

A goal goes out only on a change (each action goal restarts a motion; a Franka grasp sent every
tick would never finish). The ``fill_*`` functions write a target into a goal object of the
driver's action type; they only set attributes, so tests use stand-ins with the same fields.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = ["GRIPPER_MODES", "GRIPPER_OUTPUTS", "Gripper", "GripperConfig", "GripperConfigError", "GripperTarget",
           "fill_franka_grasp", "fill_franka_move", "fill_gripper_command", "grasped"]

GRIPPER_MODES: tuple[str, ...] = ("binary", "continuous")
GRIPPER_OUTPUTS: dict[str, str] = {
    "position_controller": "std_msgs/msg/Float64MultiArray",
    "gripper_command": "control_msgs/action/GripperCommand",
    "franka": "franka_msgs/action/Grasp",  # and franka_msgs/action/Move to open
}
"""Output kind -> the type it needs (loaded by name at start-up; the action types are not on the pip wheels)."""


class GripperConfigError(ValueError):
    """The gripper configuration is invalid; the message names the parameter."""


@dataclass(frozen=True)
class GripperConfig:
    """How the mux's closure becomes a driver goal (``gripper.*`` in the mux's parameters)."""

    output: str = "position_controller"
    """``position_controller`` (Float64MultiArray on ``gripper/commands``), ``gripper_command`` (GripperCommand
    action) or ``franka`` (the Franka hand's Grasp and Move actions; binary only)."""
    mode: str = "continuous"
    """``binary`` (open or closed, with hysteresis) or ``continuous``."""
    close_above: float = 0.6
    """Binary: a closure at or above this closes the gripper."""
    open_below: float = 0.4
    """Binary: a closure at or below this opens it again (below ``close_above``: the band between is hysteresis)."""
    min_change: float = 0.02
    """Continuous: a new goal once the closure moved by this much since the last one sent."""
    open_position: float = 0.05
    """The driver's position of the open gripper (its units: m of finger travel, rad of a knuckle; Franka: width)."""
    closed_position: float = 0.0
    """The driver's position of the closed gripper."""
    max_effort: float = 20.0
    """GripperCommand max_effort and Franka grasp force (N)."""
    speed: float = 0.1
    """Franka: finger speed (m/s) of Move and Grasp."""
    epsilon: float = 0.005
    """Franka: grasp tolerance inside the closed width (m); outside, any object up to the open width counts."""

    def __post_init__(self) -> None:
        if self.output not in GRIPPER_OUTPUTS:
            raise GripperConfigError(f"gripper.output={self.output!r} must be one of {list(GRIPPER_OUTPUTS)}")
        if self.mode not in GRIPPER_MODES:
            raise GripperConfigError(f"gripper.mode={self.mode!r} must be one of {GRIPPER_MODES}")
        if self.output == "franka" and self.mode != "binary":
            raise GripperConfigError("gripper.output=franka grasps or opens: set gripper.mode=binary")
        for name in ("close_above", "open_below", "min_change", "open_position", "closed_position", "max_effort",
                     "speed", "epsilon"):
            if not math.isfinite(getattr(self, name)):
                raise GripperConfigError(f"gripper.{name}={getattr(self, name)} must be a finite number")
        if not 0.0 <= self.open_below < self.close_above <= 1.0:
            raise GripperConfigError(f"gripper.open_below={self.open_below} and gripper.close_above={self.close_above} "
                                     "must satisfy 0 <= open_below < close_above <= 1 (the band between is hysteresis)")
        if not 0.0 < self.min_change <= 1.0:
            raise GripperConfigError(f"gripper.min_change={self.min_change} must be in (0, 1]")
        if self.open_position == self.closed_position:
            raise GripperConfigError("gripper.open_position and gripper.closed_position are equal: the gripper could "
                                     "not move; give the driver's open and closed positions")


@dataclass(frozen=True)
class GripperTarget:
    """What the gripper should do now."""

    closure: float
    """0 open .. 1 closed, after the mode (0 or 1 in binary)."""
    position: float
    """The same in the driver's units (between ``open_position`` and ``closed_position``)."""

    @property
    def closing(self) -> bool:
        return self.closure >= 0.5


class Gripper:
    """Closures in, a target out when one must be sent."""

    def __init__(self, config: GripperConfig) -> None:
        self.config = config
        self._closed = False  # binary state (hysteresis)
        self._sent: GripperTarget | None = None

    def target(self, closure: float) -> GripperTarget:
        """The target for ``closure`` (binary: updates the hysteresis state). A non-finite closure keeps the
        current target (the mux never sends one; this is the last line)."""
        c = self.config
        if not math.isfinite(closure):
            return self._sent or self._make(0.0)
        closure = min(max(closure, 0.0), 1.0)
        if c.mode == "continuous":
            return self._make(closure)
        if self._closed and closure <= c.open_below:
            self._closed = False
        elif not self._closed and closure >= c.close_above:
            self._closed = True
        return self._make(1.0 if self._closed else 0.0)

    def update(self, closure: float) -> GripperTarget | None:
        """The target to send now, or None when the last one sent still holds. Call :meth:`sent` once it went out
        (an action server that is not up yet leaves it unsent, so it is tried again on the next call)."""
        target = self.target(closure)
        last = self._sent
        if last is not None and abs(target.closure - last.closure) < (self.config.min_change if
                                                                      self.config.mode == "continuous" else 0.5):
            return None
        return target

    def sent(self, target: GripperTarget) -> None:
        self._sent = target

    def forget(self) -> None:
        """The last target did not reach the driver (goal rejected): the next update sends again."""
        self._sent = None

    @property
    def last_sent(self) -> GripperTarget | None:
        return self._sent

    def _make(self, closure: float) -> GripperTarget:
        c = self.config
        return GripperTarget(closure, c.open_position + closure * (c.closed_position - c.open_position))


# -- goals of the driver's action types (any object with the same fields) ---------------------

def fill_gripper_command(goal: Any, target: GripperTarget, config: GripperConfig) -> Any:
    """``control_msgs/action/GripperCommand`` goal: ``command.position`` and ``command.max_effort``."""
    goal.command.position = float(target.position)
    goal.command.max_effort = float(config.max_effort)
    return goal


def fill_franka_grasp(goal: Any, config: GripperConfig) -> Any:
    """``franka_msgs/action/Grasp`` goal closing on whatever is between the fingers: width ``closed_position``,
    tolerance ``epsilon`` inside and up to the open width outside."""
    goal.width = float(config.closed_position)
    goal.epsilon.inner = float(config.epsilon)
    goal.epsilon.outer = float(abs(config.open_position - config.closed_position))
    goal.speed = float(config.speed)
    goal.force = float(config.max_effort)
    return goal


def fill_franka_move(goal: Any, config: GripperConfig) -> Any:
    """``franka_msgs/action/Move`` goal opening to ``open_position`` (the Franka hand's width)."""
    goal.width = float(config.open_position)
    goal.speed = float(config.speed)
    return goal


def grasped(output: str, target: GripperTarget, result: Any) -> bool:
    """Whether an action's result says an object is held: GripperCommand stalled before reaching a closing goal,
    a Franka grasp succeeded. Opening never holds anything."""
    if not target.closing:
        return False
    if output == "gripper_command":
        return bool(result.stalled) and not bool(result.reached_goal)
    if output == "franka":
        return bool(result.success)
    raise GripperConfigError(f"gripper.output={output!r} reports no grasp result")
