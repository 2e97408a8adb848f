"""The policy's input, built from named fields of standard messages, without ROS.

A robot profile names the fields (``ObserverConfig.fields``): each takes values from one topic
of a standard type (JointState, PoseStamped, TwistStamped, WrenchStamped, Float64,
Float64MultiArray), or a position or orientation from TF (``child_frame_id``: the pose of that frame
in the field's frame, as a ``geometry_msgs/TransformStamped``), has a staleness timeout, and poses
must be in the configured frame. The ``observer`` node turns each message, and each TF lookup, into
:meth:`Observer.update` calls and publishes what :meth:`Observer.observe` returns. While any field
is missing or stale, no observation goes out (the policy then proposes nothing and the mux holds
the arm) and :attr:`Observer.problems` names the fields.

A field can be relative to the end effector (hil-serl and LeRobot give such observations): ``relative_to`` a
position field subtracts it (the goal's offset from the gripper), and ``expressed_in`` an orientation field gives the
values in its axes (``R^T v`` for positions, velocities, forces and torques; an orientation as seen from it). Its
components are then named for what they mean (``goal-ee@ee_orientation.x``), so weights learned on absolute values
are refused on relative ones.

The observation's layout is the list of its components' names (``ee.x``, ``joints.panda_joint1``,
...), in field order; it travels with every observation and with the weights, so weights learned
on another layout are refused by name (:func:`iil_robot.data.records.layout_difference`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from iil_robot.data.records import Observation
from iil_robot.data.rotation import matrix_from_quaternion, quaternion_in_frame
from iil_robot.data.tool_frame import QUATERNION

__all__ = ["FIELD_KINDS", "TF_KINDS", "VECTOR_KINDS", "FieldConfig", "Observer", "ObserverConfig", "ObserverError",
           "transform_values"]

FIELD_KINDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "position": ("geometry_msgs/PoseStamped", ("x", "y", "z")),
    "orientation": ("geometry_msgs/PoseStamped", QUATERNION),
    "joint_positions": ("sensor_msgs/JointState", ()),
    "joint_velocities": ("sensor_msgs/JointState", ()),
    "width": ("sensor_msgs/JointState", ("width",)),
    "linear_velocity": ("geometry_msgs/TwistStamped", ("vx", "vy", "vz")),
    "angular_velocity": ("geometry_msgs/TwistStamped", ("wx", "wy", "wz")),
    "force": ("geometry_msgs/WrenchStamped", ("fx", "fy", "fz")),
    "torque": ("geometry_msgs/WrenchStamped", ("tx", "ty", "tz")),
    "float64": ("std_msgs/Float64", ("value",)),
    "float64_array": ("std_msgs/Float64MultiArray", ()),
}
"""Field kind -> (message type it reads, its components' names; empty: named by ``joints`` or numbered by ``size``).
``width`` is a gripper's opening: the sum of its finger joints' positions (``joints``)."""
VECTOR_KINDS = ("position", "linear_velocity", "angular_velocity", "force", "torque")
"""Kinds whose values are one 3-vector, which ``expressed_in`` rotates."""
TF_KINDS = ("position", "orientation")
"""Kinds a field can read from TF instead of a topic: a transform's translation, or its rotation."""
TRANSFORM = "geometry_msgs/TransformStamped"
"""What a field reads where it names a ``child_frame_id``: the answer of a TF lookup."""
STAMPED = {"geometry_msgs/PoseStamped", "geometry_msgs/TwistStamped", "geometry_msgs/WrenchStamped",
           "sensor_msgs/JointState", TRANSFORM}
"""Types whose header carries the stamp and frame; the others are stamped on arrival."""
FRAMED = {"geometry_msgs/PoseStamped", "geometry_msgs/TwistStamped", "geometry_msgs/WrenchStamped", TRANSFORM}
"""Types whose header frame must be the field's frame."""


class ObserverError(ValueError):
    """A field is configured wrongly, or a message for it does not fit (the message is dropped)."""


@dataclass(frozen=True)
class FieldConfig:
    """One named field of the observation."""

    name: str
    """Prefix of its components' names (``ee`` -> ``ee.x``, ``ee.y``, ``ee.z``)."""
    kind: str
    """One of ``FIELD_KINDS``."""
    topic: str
    """Topic it reads (empty where it reads TF: ``child_frame_id``)."""
    timeout: float = 0.2
    """Seconds after its stamp that a value is stale."""
    joints: tuple[str, ...] = ()
    """JointState kinds: the joints to read, in this order (by name, never by index)."""
    size: int = 0
    """``float64_array``: the number of values expected."""
    frame_id: str = ""
    """Poses, twists, wrenches: the frame their header must name, and TF fields' lookup frame (empty: the observer's
    ``frame_id``)."""
    child_frame_id: str = ""
    """Read the pose from TF instead of a topic: the frame whose position or orientation in ``frame_id`` it reads
    (a TF lookup's ``child_frame_id``, e.g. ``tool0``); empty: read ``topic``."""
    relative_to: str = ""
    """``position`` fields: the position field subtracted from this one (e.g. ``ee``: the offset from the end
    effector); empty: absolute."""
    expressed_in: str = ""
    """The orientation field in whose axes the values are given (e.g. ``ee_orientation``): ``R^T v`` for a vector
    kind (``VECTOR_KINDS``), the orientation as seen from it for ``orientation``; empty: the frame's own axes."""

    def __post_init__(self) -> None:
        if not self.name or any(c in self.name for c in ".-@"):
            raise ObserverError(f"field name {self.name!r} must be non-empty and without '.', '-' or '@' (they name the "
                                "parts of its components: goal-ee@ee_orientation.x)")
        if self.kind not in FIELD_KINDS:
            raise ObserverError(f"field {self.name!r}: kind {self.kind!r} must be one of {list(FIELD_KINDS)}")
        if bool(self.topic) == bool(self.child_frame_id):
            raise ObserverError(f"field {self.name!r}: give either the topic it reads or the TF child_frame_id whose pose "
                                f"it reads, not {'both' if self.topic else 'neither'}")
        if self.child_frame_id and self.kind not in TF_KINDS:
            raise ObserverError(f"field {self.name!r}: kind {self.kind!r} cannot be read from TF (child_frame_id "
                                f"{self.child_frame_id!r}): only {list(TF_KINDS)}; read it from a topic")
        if not (math.isfinite(self.timeout) and self.timeout > 0):
            raise ObserverError(f"field {self.name!r}: timeout {self.timeout} must be a positive number of seconds")
        if self.message_type == "sensor_msgs/JointState" and not self.joints:
            raise ObserverError(f"field {self.name!r} ({self.kind}): list the joints it reads by name (joints: [...])")
        if self.kind == "float64_array" and self.size < 1:
            raise ObserverError(f"field {self.name!r} (float64_array): give its size (the number of values), >= 1")
        if self.relative_to and self.kind != "position":
            raise ObserverError(f"field {self.name!r}: relative_to {self.relative_to!r} needs kind position, not "
                                f"{self.kind!r} (for a velocity, force or orientation use expressed_in alone)")
        if self.expressed_in and self.kind not in (*VECTOR_KINDS, "orientation"):
            raise ObserverError(f"field {self.name!r}: expressed_in {self.expressed_in!r} rotates one vector or an "
                                f"orientation, not kind {self.kind!r} (it works for {[*VECTOR_KINDS, 'orientation']})")
        if self.name in (self.relative_to, self.expressed_in):
            raise ObserverError(f"field {self.name!r} cannot be relative to itself")

    @property
    def message_type(self) -> str:
        return TRANSFORM if self.child_frame_id else FIELD_KINDS[self.kind][0]

    @property
    def source(self) -> str:
        """Where its values come from, as messages name it: its topic, or TF and the child frame."""
        return self.topic or f"/tf ({self.child_frame_id})"

    @property
    def components(self) -> tuple[str, ...]:
        """Names of its values in the observation."""
        names = FIELD_KINDS[self.kind][1]
        if self.kind in ("joint_positions", "joint_velocities"):
            names = self.joints
        elif self.kind == "float64_array":
            names = tuple(str(i) for i in range(self.size))
        prefix = self.name + (f"-{self.relative_to}" if self.relative_to else "") + (
            f"@{self.expressed_in}" if self.expressed_in else "")
        return tuple(f"{prefix}.{n}" for n in names)


@dataclass(frozen=True)
class ObserverConfig:
    """The observation of one robot profile."""

    spec: str
    """Name of the layout (``Observation.spec``), e.g. ``panda/v1``."""
    fields: tuple[FieldConfig, ...]
    """The fields, in the order their values appear."""
    frame_id: str = "base_link"
    """Frame every pose, twist and wrench must be in, unless its field names another."""

    def __post_init__(self) -> None:
        if not self.spec:
            raise ObserverError("give the observation a spec name, e.g. panda/v1 (weights name the spec they were trained on)")
        if not self.fields:
            raise ObserverError("the observation has no fields: list them (fields: [...]) with their kind and topic")
        names = [f.name for f in self.fields]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ObserverError(f"fields {repeated} are listed more than once")
        by_name = {f.name: f for f in self.fields}
        for field in self.fields:
            for option, name, kind in (("relative_to", field.relative_to, "position"),
                                       ("expressed_in", field.expressed_in, "orientation")):
                other = by_name.get(name)
                if name and (other is None or other.kind != kind or other.relative_to or other.expressed_in):
                    raise ObserverError(f"field {field.name!r}: {option} {name!r} must name an absolute {kind} field of "
                                        f"this observation (its fields: {names}); add it to fields, e.g. "
                                        f"fields.{name}.kind: {kind} with the end effector's pose topic")

    @property
    def layout(self) -> tuple[str, ...]:
        return tuple(c for f in self.fields for c in f.components)

    def frame_of(self, field: FieldConfig) -> str:
        return field.frame_id or self.frame_id


@dataclass
class _Latest:
    values: tuple[float, ...]
    stamp: float


class Observer:
    """The newest value of every field, and the observation they make while all are fresh."""

    def __init__(self, config: ObserverConfig) -> None:
        self.config = config
        self.layout = config.layout
        self._fields = {f.name: f for f in config.fields}
        self._latest: dict[str, _Latest] = {}
        self.problems: dict[str, str] = {}
        """Per field, why it holds the observation back (missing, stale, a refused message); empty: all fresh."""
        self._unexpressed: list[str] = []  # fields the last observe could not express in their orientation field

    def fields_of(self, topic: str) -> list[FieldConfig]:
        return [f for f in self.config.fields if f.topic == topic]

    def hold(self, field: FieldConfig, reason: str) -> None:
        """``field``'s source failed (a TF lookup): its value is dropped and the observation holds, saying ``reason``,
        until its next value."""
        self._latest.pop(field.name, None)
        self.problems[field.name] = reason

    def update(self, field: FieldConfig, stamp: float, frame_id: str, values: Sequence[float],
               names: Sequence[str] = ()) -> None:
        """A message's values for ``field``: ``values`` in message order, with the joint ``names`` of a JointState.

        Raises:
            ObserverError: the message does not fit the field (wrong frame, a missing joint, a wrong size,
                a non-finite value); the field keeps its previous value and says why in ``problems``.
        """
        try:
            picked = self._pick(field, frame_id, values, names)
        except ObserverError as err:
            self.problems[field.name] = str(err)
            raise
        self._latest[field.name] = _Latest(picked, stamp)
        self.problems.pop(field.name, None)

    def _pick(self, field: FieldConfig, frame_id: str, values: Sequence[float], names: Sequence[str]) -> tuple[float, ...]:
        if field.message_type in FRAMED and frame_id != self.config.frame_of(field):
            raise ObserverError(f"field {field.name!r}: {field.source} is in frame {frame_id!r}, not "
                                f"{self.config.frame_of(field)!r}: publish it in that frame or set the field's frame_id")
        if field.message_type == "sensor_msgs/JointState":
            picked = self._joints(field, values, names)
        else:
            picked = tuple(float(v) for v in values)
            expected = len(FIELD_KINDS[field.kind][1]) or field.size
            if len(picked) != expected:
                raise ObserverError(f"field {field.name!r}: {field.source} gave {len(picked)} values, expected {expected}")
        if not all(math.isfinite(v) for v in picked):
            bad = [c for c, v in zip(field.components, picked) if not math.isfinite(v)]
            raise ObserverError(f"field {field.name!r}: {field.source} has non-finite values in {bad}")
        return picked

    @staticmethod
    def _joints(field: FieldConfig, values: Sequence[float], names: Sequence[str]) -> tuple[float, ...]:
        if len(values) != len(names):
            raise ObserverError(f"field {field.name!r}: {field.topic} has {len(names)} joint names and {len(values)} "
                                f"{'velocities' if field.kind == 'joint_velocities' else 'positions'}")
        by_name = dict(zip(names, values))
        missing = [j for j in field.joints if j not in by_name]
        if missing:
            raise ObserverError(f"field {field.name!r}: {field.topic} has no joints {missing} (it has {list(names)}): "
                                "fix the profile's joint names")
        picked = tuple(float(by_name[j]) for j in field.joints)
        return (sum(picked),) if field.kind == "width" else picked

    def observe(self, now: float) -> Observation | None:
        """The observation at ``now``, stamped with its oldest field's stamp; None while a field is missing or
        stale (``problems`` names them)."""
        for field in self.config.fields:
            latest = self._latest.get(field.name)
            if latest is None:
                self.problems.setdefault(field.name, f"no message on {field.source} yet")
            elif now - latest.stamp > field.timeout:
                self.problems[field.name] = (f"stale: the newest message on {field.source} is {now - latest.stamp:.2f} s "
                                             f"old (timeout {field.timeout:g} s)")
            elif latest.stamp - now > field.timeout:
                self.problems[field.name] = (f"{field.source} is stamped {latest.stamp - now:.2f} s in the future: its "
                                             "clock differs from this node's (use_sim_time on one side only?)")
        for name in self._unexpressed:  # judged again below, from the newest values
            self.problems.pop(name, None)
        self._unexpressed = []
        if self.problems:
            return None
        values: list[float] = []
        for field in self.config.fields:
            try:
                values += self._values(field)
            except ValueError as err:  # a zero quaternion to express it in
                self.problems[field.name] = f"field {field.name!r}: expressed_in {field.expressed_in!r}: {err}"
                self._unexpressed.append(field.name)
                return None
        stamp = min(self._latest[f.name].stamp for f in self.config.fields)
        return Observation(tuple(values), self.config.spec, stamp, self.layout)

    def _values(self, field: FieldConfig) -> tuple[float, ...]:
        values = self._latest[field.name].values
        if field.relative_to:
            values = tuple(a - b for a, b in zip(values, self._latest[field.relative_to].values))
        if not field.expressed_in:
            return values
        reference = self._latest[field.expressed_in].values
        if field.kind == "orientation":
            return quaternion_in_frame(reference, values)
        return tuple(float(v) for v in matrix_from_quaternion(reference).T @ np.asarray(values))


def transform_values(kind: str, transform: Any) -> tuple[float, ...]:
    """A TF field's values in a ``geometry_msgs/TransformStamped`` (or anything with its fields): the translation
    for ``position``, the rotation quaternion for ``orientation``.

    Raises:
        ObserverError: ``kind`` cannot be read from TF.
    """
    if kind == "position":
        t = transform.transform.translation
        return (t.x, t.y, t.z)
    if kind == "orientation":
        r = transform.transform.rotation
        return (r.x, r.y, r.z, r.w)
    raise ObserverError(f"kind {kind!r} cannot be read from TF: only {list(TF_KINDS)}")
