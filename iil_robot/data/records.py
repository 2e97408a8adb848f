"""Versioned JSON encodings carried on ``std_msgs/String``, for records that have no standard type.

Every encoded record is one JSON object with ``"format"`` and ``"version"`` keys, so a bag
written today stays readable: decoders accept their own format name and every version up to
the current one, and reject anything else with a :class:`RecordError` that names the problem.
JSON is used because any ROS 2 install, Foxglove, ``ros2 topic echo`` and ``rosbags`` can read
it without generated interfaces; the records are small (tens of floats at the control rate).

Actions everywhere are 7 floats, ``ACTION_FIELDS``: an end-effector twist in the command frame
(m/s, rad/s) and a gripper closure in [0, 1] (0 open, 1 closed).

The formats are documented field by field in docs/data.md ("Record encodings").
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from typing import Any, Sequence

ACTION_FIELDS: tuple[str, ...] = ("vx", "vy", "vz", "wx", "wy", "wz", "gripper")
ACTION_SIZE = len(ACTION_FIELDS)
SOURCE_KINDS: tuple[str, ...] = ("policy", "human", "hold")

PROPOSAL_FORMAT = "iil_robot.proposal"
PROPOSAL_VERSION = 3
"""v3: ``image_stamps``, one stamp per named camera; v2's single ``image_stamp`` decodes as camera ``front``'s
(``LEGACY_CAMERA``); v1 records have none. v2 added the optional ``risk``."""
STEP_FORMAT = "iil_robot.step"
STEP_VERSION = 3
"""As the proposal's: v3 ``image_stamps`` per camera, v2 ``image_stamp`` (camera ``front``), v1 none."""
LEGACY_CAMERA = "front"
"""The camera a v2 record's single ``image_stamp`` belongs to (the one camera node camera of that time)."""
INTERVENTION_FORMAT = "iil_robot.intervention"
INTERVENTION_VERSION = 1
OBSERVATION_FORMAT = "iil_robot.observation"
OBSERVATION_VERSION = 2
"""v2 adds ``fields``, the layout; v1 observations decode with no layout."""
EPISODE_EVENT_FORMAT = "iil_robot.episode_event"
EPISODE_EVENT_VERSION = 1


class RecordError(ValueError):
    """An encoded record is malformed: not JSON, wrong format or version, or a bad field."""


MAX_RECORD_CHARS = 4_000_000
"""Longest record text decoded (a camera-less observation of 4096 numbers is under 100 kB)."""
MAX_INTEGER = 2**63 - 1
"""Integer fields (ticks, counters, versions) must fit in int64, as every reader of a bag stores them."""
_MAX_DIGITS = 19  # an integer literal longer than this is out of range whatever it is


class _HugeInteger(str):
    """Stands in for an integer literal too long to convert (json would raise ValueError past 4300 digits)."""


def _parse_int(text: str) -> int | _HugeInteger:
    return _HugeInteger(text) if len(text.lstrip("-")) > _MAX_DIGITS else int(text)


def _parse_constant(name: str) -> float:
    raise RecordError(f"{name} is not a number JSON allows (NaN and Infinity never appear in records)")


def _number(value: Any, what: str) -> float:
    """``value`` as a finite float, or RecordError naming ``what``: a JSON number, never a bool or a string."""
    if isinstance(value, _HugeInteger):
        raise RecordError(f"{what} is an integer of {len(value)} digits: out of range")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RecordError(f"{what} must be a number, got {type(value).__name__} {_short(value)}")
    try:
        number = float(value)
    except OverflowError as err:
        raise RecordError(f"{what} = {_short(value)} is out of range") from err
    if not math.isfinite(number):
        raise RecordError(f"{what} must be finite, got {number}")
    return number


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def validate_action(values: Sequence[float], what: str = "action") -> tuple[float, ...]:
    """Return ``values`` as a tuple of 7 finite floats, gripper in [0, 1], or raise RecordError."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise RecordError(f"{what} must be a list of {ACTION_SIZE} numbers, got {type(values).__name__}")
    if len(values) != ACTION_SIZE:
        raise RecordError(f"{what} must have {ACTION_SIZE} values ({', '.join(ACTION_FIELDS)}), got {len(values)}")
    action = tuple(_number(v, f"{what} {name}") for name, v in zip(ACTION_FIELDS, values))
    if not 0.0 <= action[-1] <= 1.0:
        raise RecordError(f"{what} gripper closure {action[-1]} must be in [0, 1]")
    return action


def _finite_vector(values: Any, what: str) -> tuple[float, ...]:
    if not isinstance(values, (list, tuple)):
        raise RecordError(f"{what} must be a list of numbers, got {type(values).__name__}")
    return tuple(_number(v, f"{what}[{i}]") for i, v in enumerate(values))


def _load(text: str, expected_format: str, current_version: int) -> dict[str, Any]:
    if not isinstance(text, str):
        raise RecordError(f"a {expected_format} record must be text, got {type(text).__name__}")
    if len(text) > MAX_RECORD_CHARS:
        raise RecordError(f"{expected_format} record of {len(text)} characters exceeds the limit of {MAX_RECORD_CHARS}")
    try:
        data = json.loads(text, parse_int=_parse_int, parse_constant=_parse_constant)
    except json.JSONDecodeError as err:
        raise RecordError(f"not valid JSON ({err.msg} at position {err.pos}); expected a {expected_format} record") from err
    except RecursionError as err:
        raise RecordError(f"not a {expected_format} record: JSON nested too deeply") from err
    except ValueError as err:  # e.g. a number json cannot convert
        raise RecordError(f"not valid JSON ({err}); expected a {expected_format} record") from err
    if not isinstance(data, dict):
        raise RecordError(f"expected a JSON object holding a {expected_format} record, got {type(data).__name__}")
    if data.get("format") != expected_format:
        raise RecordError(f"format is {_short(data.get('format'))}, expected {expected_format!r}")
    version = data.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= current_version:
        raise RecordError(
            f"{expected_format} version {_short(version)} is not supported (this build reads 1..{current_version}); "
            "update iil_robot to read newer records"
        )
    return data


def _dump(fields: dict[str, Any], record_format: str, version: int) -> str:
    # allow_nan=False: a NaN must never hide in a record; callers validate before encoding.
    return json.dumps({"format": record_format, "version": version, **fields}, allow_nan=False, separators=(",", ":"))


def _field(data: dict[str, Any], name: str, kinds: type | tuple[type, ...], record: str) -> Any:
    if name not in data:
        raise RecordError(f"{record} record is missing field {name!r}")
    value = data[name]
    # bool is an int in Python; keep them apart so a flag never passes as a number.
    if isinstance(value, bool) and bool not in (kinds if isinstance(kinds, tuple) else (kinds,)):
        raise RecordError(f"{record} field {name!r} must be {kinds}, got a bool")
    if not isinstance(value, kinds) or isinstance(value, _HugeInteger):
        raise RecordError(f"{record} field {name!r} has type {type(value).__name__}, expected {kinds}")
    return value


def _float(data: dict[str, Any], name: str, record: str) -> float:
    """A required finite number."""
    if name not in data:
        raise RecordError(f"{record} record is missing field {name!r}")
    return _number(data[name], f"{record} field {name!r}")


def _integer(data: dict[str, Any], name: str, record: str, optional: bool = False) -> int | None:
    """A required (or optional: absent or null -> None) integer in [0, MAX_INTEGER]."""
    value = data.get(name)
    if value is None and optional:
        return None
    out_of_range = isinstance(value, int) and not isinstance(value, bool) and not 0 <= value <= MAX_INTEGER
    if isinstance(value, _HugeInteger) or out_of_range:
        raise RecordError(f"{record} field {name!r} = {_short(value)} must be an integer in [0, {MAX_INTEGER}]")
    return _field(data, name, int, record)


def _image_stamps(data: dict[str, Any], record: str) -> dict[str, float] | None:
    """``image_stamps`` (v3: camera name -> finite stamp), or a v2 ``image_stamp`` as ``LEGACY_CAMERA``'s, or None."""
    if data.get("image_stamp") is not None:
        return {LEGACY_CAMERA: _number(data["image_stamp"], f"{record} field 'image_stamp'")}
    value = data.get("image_stamps")
    if value is None:
        return None
    if not isinstance(value, dict) or not all(isinstance(k, str) and k for k in value):
        raise RecordError(f"{record} field 'image_stamps' must be an object of camera name -> stamp, got {_short(value)}")
    return {name: _number(stamp, f"{record} field 'image_stamps' camera {name!r}") for name, stamp in value.items()}


def _optional_stamp(data: dict[str, Any], name: str, record: str) -> float | None:
    """An optional number: absent (older versions) or null -> None, else finite."""
    value = data.get(name)
    return None if value is None else _number(value, f"{record} field {name!r}")


@dataclass(frozen=True)
class Observation:
    """The policy's input vector, published by the arm side (the sim arm, or an observer node)."""

    values: tuple[float, ...]
    """The flat observation vector."""
    spec: str
    """Name of the layout, e.g. ``fetch_push/v1``; weights name the spec they were trained on."""
    stamp: float
    """Time stamp (s) of the state it describes, node clock."""
    fields: tuple[str, ...] = ()
    """The layout: the name of each value (``ee.x``, ``joints.panda_joint1``, ...); empty: not named."""

    def encode(self) -> str:
        return _dump(asdict(self), OBSERVATION_FORMAT, OBSERVATION_VERSION)

    @classmethod
    def decode(cls, text: str) -> "Observation":
        """Parse and validate an observation. Raises RecordError naming what was wrong."""
        data = _load(text, OBSERVATION_FORMAT, OBSERVATION_VERSION)
        values = _finite_vector(_field(data, "values", list, "observation"), "observation values")
        names = data.get("fields", [])
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise RecordError("observation fields must be a list of names")
        if names and len(names) != len(values):
            raise RecordError(f"observation has {len(values)} values but {len(names)} field names")
        return cls(
            values=values,
            spec=_field(data, "spec", str, "observation"),
            stamp=_float(data, "stamp", "observation"),
            fields=tuple(names),
        )


@dataclass(frozen=True)
class Proposal:
    """What the policy proposes each control tick: its action and the observation behind it."""

    action: tuple[float, ...]
    """The policy's action (``ACTION_FIELDS``)."""
    observation: tuple[float, ...]
    """The observation vector the action was computed from."""
    policy_version: int
    """Version of the weights that produced the action (0 = the fallback before any weights)."""
    obs_stamp: float
    """Time stamp (s) of the observation, node clock."""
    stamp: float
    """Time stamp (s) when the proposal was made, node clock."""
    uncertainty: float | None = None
    """Ensemble disagreement of the policy, when it has one."""
    risk: float | None = None
    """1 - Q_G(s, action): the policy's risk of not reaching the goal, when its weights carry a goal critic."""
    image_stamps: dict[str, float] | None = None
    """Capture stamp (s, the image header's) of each camera's frame the policy acted on, by camera name; None
    without camera frames."""

    def encode(self) -> str:
        return _dump(asdict(self), PROPOSAL_FORMAT, PROPOSAL_VERSION)

    @classmethod
    def decode(cls, text: str) -> "Proposal":
        """Parse and validate a proposal. Raises RecordError naming what was wrong."""
        data = _load(text, PROPOSAL_FORMAT, PROPOSAL_VERSION)
        action = validate_action(_field(data, "action", list, "proposal"), "proposal action")
        observation = _finite_vector(_field(data, "observation", list, "proposal"), "proposal observation")
        return cls(
            action=action,
            observation=observation,
            policy_version=_integer(data, "policy_version", "proposal"),  # type: ignore[arg-type]
            obs_stamp=_float(data, "obs_stamp", "proposal"),
            stamp=_float(data, "stamp", "proposal"),
            uncertainty=_optional_stamp(data, "uncertainty", "proposal"),
            risk=_optional_stamp(data, "risk", "proposal"),  # absent in older proposals
            image_stamps=_image_stamps(data, "proposal"),
        )

    def check(self) -> "Proposal":
        """Raise RecordError unless every field is what ``decode`` accepts (for proposals built in-process)."""
        validate_action(self.action, "proposal action")
        _finite_vector(self.observation, "proposal observation")
        fields = {"obs_stamp": self.obs_stamp, "stamp": self.stamp, "uncertainty": self.uncertainty, "risk": self.risk,
                  "image_stamps": self.image_stamps}
        for name in ("obs_stamp", "stamp"):
            _float(fields, name, "proposal")
        for name in ("uncertainty", "risk"):
            _optional_stamp(fields, name, "proposal")
        _image_stamps(fields, "proposal")
        _integer({"policy_version": self.policy_version}, "policy_version", "proposal")
        return self


@dataclass(frozen=True)
class StepRecord:
    """One control tick as the mux executed it: everything the learners and replay need."""

    tick: int
    """Counter of mux ticks since the mux started (gaps mean lost records)."""
    stamp: float
    """Node-clock time (s) of the tick (sim time under ``use_sim_time``)."""
    source: str
    """Who was in control: ``policy``, ``human`` or ``hold`` (explicit zero)."""
    source_name: str
    """The configured name of that source (e.g. ``spacemouse``), or the hold reason's subject."""
    executed_action: tuple[float, ...]
    """The action sent to the arm after safety limits (``ACTION_FIELDS``)."""
    policy_action: tuple[float, ...] | None
    """The policy's proposal for this tick, or None if no valid fresh proposal."""
    human_action: tuple[float, ...] | None
    """The operator's current input (twist + gripper), or None if no fresh human input."""
    human_engaged: bool
    """Whether the operator's gate was engaged at the tick (even if a lock held the arm)."""
    intervention: bool
    """True while the human is in control."""
    onset: bool
    """True on the first tick of an intervention."""
    offset: bool
    """True on the first tick after an intervention ended."""
    observation: tuple[float, ...] | None
    """The observation the policy saw (from its proposal), or None."""
    obs_stamp: float | None
    """Time stamp (s) of that observation."""
    policy_version: int | None
    """Version of the weights behind ``policy_action``."""
    hold_reason: str
    """Why the arm was held (``locked:estop``, ``paused``, ``stale:policy``...), empty otherwise."""
    limited: bool
    """True when a safety limit changed the commanded action."""
    image_stamps: dict[str, float] | None = None
    """Capture stamp (s) of each camera's frame behind the proposal (from it), by camera name, or None: the learner
    pairs images by them."""

    def __post_init__(self) -> None:
        if self.source not in SOURCE_KINDS:
            raise RecordError(f"step source {self.source!r} must be one of {SOURCE_KINDS}")

    def encode(self) -> str:
        return _dump(asdict(self), STEP_FORMAT, STEP_VERSION)

    @classmethod
    def decode(cls, text: str) -> "StepRecord":
        """Parse and validate a step record. Raises RecordError naming what was wrong."""
        data = _load(text, STEP_FORMAT, STEP_VERSION)

        def optional_action(name: str) -> tuple[float, ...] | None:
            value = data.get(name)
            return None if value is None else validate_action(value, f"step {name}")

        observation = data.get("observation")
        return cls(
            tick=_integer(data, "tick", "step"),  # type: ignore[arg-type]
            stamp=_float(data, "stamp", "step"),
            source=_field(data, "source", str, "step"),
            source_name=_field(data, "source_name", str, "step"),
            executed_action=validate_action(_field(data, "executed_action", list, "step"), "step executed_action"),
            policy_action=optional_action("policy_action"),
            human_action=optional_action("human_action"),
            human_engaged=_field(data, "human_engaged", bool, "step"),
            intervention=_field(data, "intervention", bool, "step"),
            onset=_field(data, "onset", bool, "step"),
            offset=_field(data, "offset", bool, "step"),
            observation=None if observation is None else _finite_vector(observation, "step observation"),
            obs_stamp=_optional_stamp(data, "obs_stamp", "step"),
            policy_version=_integer(data, "policy_version", "step", optional=True),
            hold_reason=_field(data, "hold_reason", str, "step"),
            limited=_field(data, "limited", bool, "step"),
            image_stamps=_image_stamps(data, "step"),
        )


@dataclass(frozen=True)
class InterventionEvent:
    """Published by the mux when control passes to or from the operator."""

    intervening: bool
    """True from onset until the operator hands back."""
    source_name: str
    """The human source that took or gave back control."""
    stamp: float
    """Node-clock time (s) of the change."""
    reason: str
    """Why (the gate's engagement reason, or the mux's, e.g. ``human source stale``)."""
    count: int
    """Number of interventions since the mux started, this one included."""
    duration: float
    """Length (s) of the intervention that just ended; 0.0 at onset."""

    def encode(self) -> str:
        return _dump(asdict(self), INTERVENTION_FORMAT, INTERVENTION_VERSION)

    @classmethod
    def decode(cls, text: str) -> "InterventionEvent":
        data = _load(text, INTERVENTION_FORMAT, INTERVENTION_VERSION)
        return cls(
            intervening=_field(data, "intervening", bool, "intervention"),
            source_name=_field(data, "source_name", str, "intervention"),
            stamp=_float(data, "stamp", "intervention"),
            reason=_field(data, "reason", str, "intervention"),
            count=_integer(data, "count", "intervention"),  # type: ignore[arg-type]
            duration=_float(data, "duration", "intervention"),
        )


EPISODE_EVENT_KINDS: tuple[str, ...] = ("start", "success", "failure", "timeout", "reset")


@dataclass(frozen=True)
class EpisodeEvent:
    """An episode boundary or outcome, from the operator's buttons, the sim or a service."""

    event: str
    """One of ``EPISODE_EVENT_KINDS``."""
    origin: str
    """Who said so: ``operator``, ``sim``, ``service``..."""
    stamp: float
    """Node-clock time (s)."""

    def __post_init__(self) -> None:
        if self.event not in EPISODE_EVENT_KINDS:
            raise RecordError(f"episode event {self.event!r} must be one of {EPISODE_EVENT_KINDS}")

    def encode(self) -> str:
        return _dump(asdict(self), EPISODE_EVENT_FORMAT, EPISODE_EVENT_VERSION)

    @classmethod
    def decode(cls, text: str) -> "EpisodeEvent":
        data = _load(text, EPISODE_EVENT_FORMAT, EPISODE_EVENT_VERSION)
        return cls(
            event=_field(data, "event", str, "episode event"),
            origin=_field(data, "origin", str, "episode event"),
            stamp=_float(data, "stamp", "episode event"),
        )


def layout_difference(expected: Sequence[str], actual: Sequence[str]) -> str:
    """What differs between two observation layouts, in words; empty when they are the same."""
    expected, actual = tuple(expected), tuple(actual)
    if expected == actual:
        return ""
    missing = [c for c in expected if c not in actual]
    extra = [c for c in actual if c not in expected]
    parts = []
    if missing:
        parts.append(f"missing {missing[:6]}{' ...' if len(missing) > 6 else ''}")
    if extra:
        parts.append(f"extra {extra[:6]}{' ...' if len(extra) > 6 else ''}")
    if not parts:
        first = next(i for i, (a, b) in enumerate(zip(expected, actual)) if a != b)
        parts.append(f"the same components in another order (first difference at {first}: {expected[first]!r} "
                     f"expected, {actual[first]!r} given)")
    return "; ".join(parts)
