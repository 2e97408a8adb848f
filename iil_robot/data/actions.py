"""The learned action spaces: which values of the 7-value record action a learner and its policy act in.

Records always carry all of ``ACTION_FIELDS`` (vx vy vz wx wy wz gripper). A learner learns, and a
policy proposes, a subset of them, named here once (``ACTION_SPACES``); each includes the gripper:

=================  ======================================  ============================
name               values                                  weights' ``action_spec``
=================  ======================================  ============================
translation        vx vy vz gripper (the default)          ``translation_gripper/v1``
translation_yaw    vx vy vz wz gripper                     ``translation_yaw_gripper/v1``
6dof               vx vy vz wx wy wz gripper               ``twist_gripper/v1``
=================  ======================================  ============================

The bounds of the learned box come from the mux's speed limits (``ActionConfig``): each linear
component in ±``max_linear_speed``, each angular one in ±``max_angular_speed``, the gripper in [0, 1].
The policy node expands its action back into the 7-value proposal with zeros for the values its
space leaves out (``expand``).

**Frames** (``ACTION_FRAMES``, ``ActionConfig.frame``): in ``base`` the learned velocities are in the
command frame (the mux's ``frame_id``); in ``tool`` they are in the end effector's frame, and the policy
node and the labels rotate between the two (``iil_robot.data.tool_frame``). A tool-frame space's weights
spec is the space's own with the prefix ``tool_`` (``twist_gripper/v1`` -> ``tool_twist_gripper/v1``):
weights read as base when it is absent, and a build that knows no frames refuses tool-frame weights as
an unknown spec instead of acting on them in the wrong frame.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Sequence

import numpy as np

from iil_robot.data.records import ACTION_FIELDS, ACTION_SIZE

__all__ = ["ACTION_FRAMES", "ACTION_SPACES", "DEFAULT_ACTION_SPACE", "MAX_ANGULAR_SPEED", "MAX_LINEAR_SPEED", "ActionConfig",
           "ActionSpace", "action_frame_of_spec", "action_space", "action_space_of_spec", "action_spec"]

MAX_LINEAR_SPEED = 0.25
"""Default largest linear speed (m/s): the mux's limit (``command.safety.Limits``) and the learned box's."""
MAX_ANGULAR_SPEED = 1.0
"""Default largest angular speed (rad/s): the mux's limit and the learned box's."""
GRIPPER = ACTION_FIELDS.index("gripper")


@dataclass(frozen=True)
class ActionSpace:
    """A named subset of the record action (``indices`` into ``ACTION_FIELDS``)."""

    name: str
    indices: tuple[int, ...]
    """Positions in the 7-value record action, in the order the learner's action holds them."""
    spec: str
    """The weights metadata's ``action_spec`` for this space (versioned)."""

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(ACTION_FIELDS[i] for i in self.indices)

    @property
    def size(self) -> int:
        return len(self.indices)

    @property
    def rotates(self) -> bool:
        """Whether the space holds an angular velocity (the arm's orientation changes)."""
        return any(3 <= i <= 5 for i in self.indices)

    def pick(self, actions: np.ndarray) -> np.ndarray:
        """[..., 7] record actions -> [..., size] actions of this space."""
        return np.asarray(actions)[..., list(self.indices)]

    def expand(self, values: Sequence[float]) -> tuple[float, ...]:
        """An action of this space -> the 7-value record action (zeros for the values the space leaves out)."""
        if len(values) != self.size:
            raise ValueError(f"action space {self.name!r} has {self.size} values ({', '.join(self.fields)}), got {len(values)}")
        action = [0.0] * ACTION_SIZE
        for index, value in zip(self.indices, values):
            action[index] = float(value)
        return tuple(action)

    def difference(self, other: "ActionSpace") -> str:
        """What ``other`` has that this space lacks and the reverse, in words (empty when they are the same)."""
        missing = [f for f in self.fields if f not in other.fields]
        extra = [f for f in other.fields if f not in self.fields]
        return "; ".join(part for part in (f"missing {missing}" if missing else "", f"extra {extra}" if extra else "") if part)


ACTION_SPACES: dict[str, ActionSpace] = {space.name: space for space in (
    ActionSpace("translation", (0, 1, 2, GRIPPER), "translation_gripper/v1"),
    ActionSpace("translation_yaw", (0, 1, 2, 5, GRIPPER), "translation_yaw_gripper/v1"),
    ActionSpace("6dof", (0, 1, 2, 3, 4, 5, GRIPPER), "twist_gripper/v1"),
)}
DEFAULT_ACTION_SPACE = "translation"
ACTION_FRAMES = ("base", "tool")
"""Frames of the learned velocities: ``base`` (the command frame, the default) or ``tool`` (the end effector's)."""
TOOL_PREFIX = "tool_"
"""Prefix of a tool-frame space's weights spec."""


def action_space(name: str) -> ActionSpace:
    """The action space called ``name``. Raises ValueError naming the choices."""
    if name not in ACTION_SPACES:
        raise ValueError(f"action space {name!r} is unknown; choose one of {list(ACTION_SPACES)}")
    return ACTION_SPACES[name]


def action_spec(space: ActionSpace, frame: str) -> str:
    """The weights' ``action_spec`` of ``space`` learned in ``frame`` (``ACTION_FRAMES``)."""
    return space.spec if frame == "base" else TOOL_PREFIX + space.spec


def action_frame_of_spec(spec: str) -> str:
    """The frame of the weights' ``action_spec`` ``spec``: ``tool`` with the tool prefix, else ``base``."""
    return "tool" if spec.startswith(TOOL_PREFIX) else "base"


def action_space_of_spec(spec: str) -> ActionSpace:
    """The action space whose weights carry ``action_spec`` ``spec`` (in either frame). Raises ValueError naming the
    known specs."""
    own = spec[len(TOOL_PREFIX):] if spec.startswith(TOOL_PREFIX) else spec
    for space in ACTION_SPACES.values():
        if space.spec == own:
            return space
    known = [action_spec(s, frame) for frame in ACTION_FRAMES for s in ACTION_SPACES.values()]
    raise ValueError(f"action spec {spec[:60]!r} is unknown; this build knows {known}")


@dataclass(frozen=True)
class ActionConfig:
    """The learned action (parameters ``action.*`` of the learner and the policy node): its space and bounds.

    The bounds are the mux's speed limits: ``iil-robot sim`` and ``intervention.launch.py`` pass the mux's
    ``limits.max_linear_speed`` / ``limits.max_angular_speed`` here, so the policy never learns to ask for more
    than the mux lets through."""

    space: str = DEFAULT_ACTION_SPACE
    """Learned action space: translation (vx vy vz gripper), translation_yaw (+ wz) or 6dof (+ wx wy wz)."""
    max_linear_speed: float = MAX_LINEAR_SPEED
    """Bound (m/s) of each learned linear velocity: the mux's limits.max_linear_speed."""
    max_angular_speed: float = MAX_ANGULAR_SPEED
    """Bound (rad/s) of each learned angular velocity: the mux's limits.max_angular_speed."""
    frame: str = "base"
    """Frame of the learned velocities: base (the command frame) or tool (the end effector's: the policy rotates its
    action by the orientation in the observation's orientation_field, the labels the executed action back)."""
    orientation_field: str = "ee_orientation"
    """Observation field with the end effector's orientation (kind orientation: quaternion qx qy qz qw in the command
    frame); needed with frame tool."""

    RANGES: ClassVar[dict[str, tuple[float, float]]] = {"max_linear_speed": (0.001, 10.0), "max_angular_speed": (0.001, 20.0)}
    """The node parameters' ranges: those of the mux's limits (nodes/mux.py)."""

    def __post_init__(self) -> None:
        action_space(self.space)
        if self.frame not in ACTION_FRAMES:
            raise ValueError(f"frame {self.frame!r} is unknown; choose one of {list(ACTION_FRAMES)}")
        if self.frame == "tool" and not self.orientation_field:
            raise ValueError("frame 'tool' needs orientation_field: the observation field with the end effector's orientation")
        for name in ("max_linear_speed", "max_angular_speed"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value > 0):
                raise ValueError(f"{name}={value} must be a finite speed > 0 (the mux's limits.{name})")

    @property
    def action_space(self) -> ActionSpace:
        return ACTION_SPACES[self.space]

    @property
    def spec(self) -> str:
        """The weights' ``action_spec``: the space in this frame."""
        return action_spec(self.action_space, self.frame)

    @property
    def command_indices(self) -> tuple[int, ...]:
        """Positions of the 7-value proposal this action can fill: the space's own in the base frame; in the tool
        frame a rotated linear or angular velocity fills all three of its components."""
        if self.frame == "base":
            return self.action_space.indices
        space = self.action_space
        return (0, 1, 2) + ((3, 4, 5) if space.rotates else ()) + (GRIPPER,)

    def bounds(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """(low, high) of the learned action, per value of the space."""
        def bound(index: int) -> tuple[float, float]:
            if index == GRIPPER:
                return 0.0, 1.0
            limit = self.max_linear_speed if index < 3 else self.max_angular_speed
            return -limit, limit
        pairs = [bound(i) for i in self.action_space.indices]
        return tuple(lo for lo, _ in pairs), tuple(hi for _, hi in pairs)
