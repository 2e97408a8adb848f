"""An arm's own status message judged as a fault or not, for the mux's diagnostics lock, without ROS.

Some drivers report a fault only inside a driver-specific message: franka_ros2 gives the robot mode
(idle, move, reflex, user stop, ...) as ``robot_mode`` in ``franka_msgs/msg/FrankaRobotState``. The
``arm_status`` node reads one integer or boolean field of such a message and publishes it as a
``DiagnosticStatus`` that a mux lock of type ``diagnostics`` watches: OK while the value is one of
``ok_values``, ERROR otherwise, STALE when no message came for ``timeout`` (the mux locks on ERROR
and STALE).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

__all__ = ["ArmStatus", "ArmStatusConfig", "ArmStatusError", "Verdict", "field_value", "value_name"]


class ArmStatusError(ValueError):
    """The configuration is wrong, or a message does not hold the configured field."""


@dataclass(frozen=True)
class ArmStatusConfig:
    """What the ``arm_status`` node reads and how it judges it."""

    field: str
    """Dotted path of the field in the message (``robot_mode``; ``status.mode``)."""
    ok_values: tuple[int, ...]
    """Values that mean the arm may move (Franka: 1 idle, 2 move); any other is a fault."""
    timeout: float = 0.5
    """Seconds without a message after which the status is STALE (the driver or its broadcaster stopped)."""

    def __post_init__(self) -> None:
        if not self.field or any(not part.isidentifier() for part in self.field.split(".")):
            raise ArmStatusError(f"field {self.field!r} must be a dotted path of field names, e.g. robot_mode")
        if not self.ok_values:
            raise ArmStatusError("ok_values is empty: list the values that mean the arm may move, e.g. [1, 2]")
        if not (math.isfinite(self.timeout) and self.timeout > 0):
            raise ArmStatusError(f"timeout {self.timeout} must be a positive number of seconds")


@dataclass(frozen=True)
class Verdict:
    """One judgement: ``level`` is ``ok``, ``error`` or ``stale``; ``message`` says why."""

    level: str
    message: str
    value: int | None


def field_value(msg: Any, path: str) -> int:
    """The integer (or boolean, as 0/1) at ``path`` in ``msg``.

    Raises:
        ArmStatusError: a part of the path is missing, or the value is not an integer or a boolean.
    """
    value = msg
    for part in path.split("."):
        if not hasattr(value, part):
            raise ArmStatusError(f"{type(msg).__name__} has no field {path!r} (no {part!r}): set 'field' to one of its "
                                 f"integer fields")
        value = getattr(value, part)
    if isinstance(value, bytes) and len(value) == 1:  # rclpy gives a byte field as one byte
        value = value[0]
    if isinstance(value, bool):
        return int(value)
    if not isinstance(value, int):
        raise ArmStatusError(f"{type(msg).__name__}.{path} is {type(value).__name__}, not an integer or a boolean")
    return value


def value_name(msg_type: type, path: str, value: int) -> str:
    """The message's own constant for ``value`` of the field (``ROBOT_MODE_REFLEX`` for robot_mode 4), or the number."""
    prefix = path.rsplit(".", 1)[-1].upper() + "_"
    names = [n for n in dir(msg_type) if n.startswith(prefix) and n.isupper() and getattr(msg_type, n) == value]
    return names[0] if names else str(value)


class ArmStatus:
    """The newest value of the field and when it came, judged against ``ok_values`` and ``timeout``."""

    def __init__(self, config: ArmStatusConfig, name_of: Callable[[int], str] = str) -> None:
        self.config = config
        self.name_of = name_of
        self.value: int | None = None
        self.stamp = -math.inf

    def update(self, value: int, now: float) -> None:
        self.value, self.stamp = value, now

    def verdict(self, now: float) -> Verdict:
        if self.value is None:
            return Verdict("stale", "no status message yet", None)
        age = now - self.stamp
        name = self.name_of(self.value)
        if age > self.config.timeout:
            return Verdict("stale", f"no status message for {age:.2f} s (last {self.config.field} = {name})", self.value)
        if self.value not in self.config.ok_values:
            return Verdict("error", f"{self.config.field} = {name}: the arm may not move "
                                    f"(ok: {', '.join(self.name_of(v) for v in self.config.ok_values)})", self.value)
        return Verdict("ok", f"{self.config.field} = {name}", self.value)
