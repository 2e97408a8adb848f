"""The SpaceMouse human gate: from device deflection to a human command and an engagement state.

Axis convention (REP-103, the robot base frame as the operator sees it): the six device axes
arrive normalised to [-1, 1] in the order ``x, y, z, roll, pitch, yaw`` with x forward, y left,
z up and rotations right-handed about those axes (pyspacemouse's ``AxisConvention.ROS``, and
what the ``spacenav`` driver publishes on ``spacenav/joy``).

Operator frames: the deflection is turned into the command frame by a rotation, so that pushing
the cap away from you moves the arm away from you wherever you stand:

- ``operator_frame: base``: the device's axes are the command frame's turned by ``operator_yaw``
  degrees about z (0: you stand behind the robot looking along +x; 180: you face it; 90: you
  stand on its right looking along +y);
- ``operator_frame: tool``: the device's axes are the end effector's (its orientation from the
  EE pose, then ``operator_yaw`` about the tool's z): push forward and the tool moves along its
  own x. Without a fresh tool orientation the command is zero.

``axis_sign`` mirrors single device axes (before the rotation) for operators who want an axis
inverted, which no rotation does; ``iil-robot doctor --calibrate`` measures ``operator_yaw``.

Engagement, with hysteresis so a hovering hand does not chatter:

- idle -> engaged: the deflection (largest active axis) stays above ``engage_threshold`` for
  ``engage_time`` seconds, the takeover button is held (``hold``) / toggled on (``toggle``), or
  a gripper button is pressed (commanding the gripper is taking over).
- engaged -> idle: nothing has happened for ``release_time`` seconds, where "something" is a
  deflection outside the deadband or the takeover button held or latched.
- the device is lost: zero command and idle at once (``Gate.device_lost``).

The gate is pure logic: the caller passes the device sample and a monotonic ``now``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from iil_robot.command.chords import EPISODE_REQUESTS, ChordConfig, ChordConfigError, Chords
from iil_robot.data.rotation import matrix_from_quaternion, yaw_matrix

AXES: tuple[str, ...] = ("x", "y", "z", "roll", "pitch", "yaw")
OPERATOR_FRAMES: tuple[str, ...] = ("base", "tool")
ACTIVE_AXES_MODES: tuple[str, ...] = ("translation", "6dof")
TAKEOVER_MODES: tuple[str, ...] = ("hold", "toggle")
CORRUPT_AXIS = 10.0
"""An axis value beyond +-this (ten times full deflection), or not finite, is a corrupt report, not a hand."""


def corrupt_axes(axes: Sequence[float]) -> list[int]:
    """Indices of the axis values that are corrupt (``CORRUPT_AXIS``)."""
    return [i for i, a in enumerate(axes) if not (math.isfinite(a) and abs(a) <= CORRUPT_AXIS)]


class GateConfigError(ValueError):
    """A gate parameter is out of range or inconsistent."""


@dataclass(frozen=True)
class ButtonMap:
    """Which device button (0-based index, -1 = none) does what."""

    takeover: int = 1
    """Take over from the policy: held (``hold`` mode) or pressed on/off (``toggle`` mode)."""
    gripper_toggle: int = 0
    """Each press flips the gripper between open and closed."""
    gripper_open: int = -1
    """Open the gripper."""
    gripper_close: int = -1
    """Close the gripper."""
    success: int = -1
    """Mark the current episode a success."""
    failure: int = -1
    """Mark the current episode a failure."""
    reset: int = -1
    """Ask for an episode reset."""

    def assigned(self) -> dict[str, int]:
        """Map of action name to button index for the actions that have a button."""
        return {name: index for name, index in vars(self).items() if index >= 0}


@dataclass(frozen=True)
class GateConfig:
    """Parameters of the human gate (the ``spacemouse_gate`` node maps its parameters here)."""

    deadband: float = 0.08
    """Fraction of full deflection ignored around the centre, per axis; the rest is rescaled to start at 0."""
    axis_scale: tuple[float, ...] = (0.25, 0.25, 0.25, 0.8, 0.8, 0.8)
    """Speed at full deflection per axis: m/s for x, y, z and rad/s for roll, pitch, yaw."""
    axis_sign: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0, 1.0, 1.0)
    """+1 or -1 per device axis: mirrors an axis the operator wants inverted (applied before the rotation)."""
    operator_frame: str = "base"
    """``base``: device axes are the command frame's turned by ``operator_yaw``; ``tool``: the end effector's."""
    operator_yaw: float = 0.0
    """Degrees about z from the command frame (or the tool) to the device's axes: where the operator stands."""
    tool_pose_timeout: float = 0.2
    """``tool`` frame: a tool orientation older than this (s) is stale and the command is zero."""
    active_axes: str = "translation"
    """``translation`` (x, y, z only) or ``6dof``; inactive axes are always zero."""
    engage_threshold: float = 0.25
    """Deflection (fraction of full scale, >= deadband) that starts an intervention."""
    engage_time: float = 0.0
    """Seconds the deflection must stay above the threshold before the gate engages."""
    release_time: float = 0.5
    """Seconds inside the deadband, takeover button free, before control goes back to the policy."""
    takeover_mode: str = "hold"
    """``hold``: engaged while the takeover button is held; ``toggle``: each press latches or unlatches."""
    buttons: ButtonMap = field(default_factory=ButtonMap)
    """Button assignments."""
    chords: ChordConfig = field(default_factory=ChordConfig)
    """Episode requests on both buttons together (a two-button SpaceMouse Compact; ``iil_robot.command.chords``)."""
    initial_gripper: float = 0.0
    """Gripper closure before the first gripper button press (0 open, 1 closed)."""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise GateConfigError naming the first bad parameter and its allowed range."""
        if not 0.0 <= self.deadband < 1.0:
            raise GateConfigError(f"deadband={self.deadband} must be in [0, 1)")
        if not self.deadband <= self.engage_threshold <= 1.0:
            raise GateConfigError(
                f"engage_threshold={self.engage_threshold} must be in [deadband={self.deadband}, 1]"
            )
        for name, values in (("axis_scale", self.axis_scale), ("axis_sign", self.axis_sign)):
            if len(values) != len(AXES):
                raise GateConfigError(f"{name} needs {len(AXES)} values ({', '.join(AXES)}), got {len(values)}")
            if not all(math.isfinite(v) for v in values):
                raise GateConfigError(f"{name}={list(values)} must be finite")
        if any(v < 0.0 for v in self.axis_scale):
            raise GateConfigError(f"axis_scale={list(self.axis_scale)} must be >= 0 (use axis_sign to flip)")
        if any(v not in (-1.0, 1.0) for v in self.axis_sign):
            raise GateConfigError(f"axis_sign={list(self.axis_sign)} must hold only +1 or -1")
        if self.operator_frame not in OPERATOR_FRAMES:
            raise GateConfigError(f"operator_frame={self.operator_frame!r} must be one of {OPERATOR_FRAMES}")
        if not (math.isfinite(self.operator_yaw) and -360.0 <= self.operator_yaw <= 360.0):
            raise GateConfigError(f"operator_yaw={self.operator_yaw} must be degrees in [-360, 360]")
        if not self.tool_pose_timeout > 0.0:
            raise GateConfigError(f"tool_pose_timeout={self.tool_pose_timeout} must be > 0 s")
        if self.active_axes not in ACTIVE_AXES_MODES:
            raise GateConfigError(f"active_axes={self.active_axes!r} must be one of {ACTIVE_AXES_MODES}")
        if self.takeover_mode not in TAKEOVER_MODES:
            raise GateConfigError(f"takeover_mode={self.takeover_mode!r} must be one of {TAKEOVER_MODES}")
        if self.engage_time < 0.0 or self.release_time < 0.0:
            raise GateConfigError("engage_time and release_time must be >= 0 seconds")
        if not 0.0 <= self.initial_gripper <= 1.0:
            raise GateConfigError(f"initial_gripper={self.initial_gripper} must be in [0, 1]")
        try:
            self.chords.validate()
        except ChordConfigError as err:
            raise GateConfigError(str(err)) from err
        used: dict[int, str] = {}
        for name, index in self.buttons.assigned().items():
            if index in used:
                raise GateConfigError(f"button {index} is mapped to both {used[index]} and {name}")
            used[index] = name

    @property
    def active(self) -> tuple[bool, ...]:
        """Which of the six axes drive the command."""
        return (True,) * 3 + ((self.active_axes == "6dof"),) * 3


@dataclass(frozen=True)
class GateOutput:
    """What the gate says after one update."""

    twist: tuple[float, ...]
    """Human command: (vx, vy, vz, wx, wy, wz) in m/s and rad/s, deadbanded and scaled."""
    engaged: bool
    """Whether the operator holds control."""
    engaged_changed: bool
    """True on the update that engaged or released."""
    reason: str
    """Why the engagement changed (empty when it did not)."""
    gripper: float
    """Commanded gripper closure in [0, 1]."""
    gripper_changed: bool
    """True on the update that changed the gripper command."""
    events: tuple[str, ...]
    """Episode events pressed in this update: any of ``success``, ``failure``, ``reset``."""
    frame_error: str = ""
    """Why the command is zero although the cap is deflected (``tool`` frame without a fresh tool orientation)."""


ZERO_TWIST: tuple[float, ...] = (0.0,) * 6


def apply_deadband(value: float, deadband: float) -> float:
    """Zero inside the deadband; outside it, rescale so the output starts at 0 and reaches +-1."""
    magnitude = abs(value)
    if magnitude <= deadband:
        return 0.0
    return math.copysign(min(1.0, (magnitude - deadband) / (1.0 - deadband)), value)


class Gate:
    """Engagement state machine and axis mapping for one operator input device."""

    def __init__(self, config: GateConfig) -> None:
        self.config = config
        self._engaged = False
        self._arming_since: float | None = None
        self._last_active = -math.inf
        self._latched = False
        self._gripper = config.initial_gripper
        self._previous_buttons: tuple[int, ...] = ()
        self._chords = Chords(config.chords)
        self._yaw = yaw_matrix(math.radians(config.operator_yaw))
        self._tool: np.ndarray | None = None
        self._tool_time = -math.inf

    @property
    def engaged(self) -> bool:
        return self._engaged

    @property
    def gripper(self) -> float:
        return self._gripper

    def missing_buttons(self, button_count: int) -> dict[str, int]:
        """Assigned buttons the device does not have (to warn about once)."""
        return {name: i for name, i in self.config.buttons.assigned().items() if i >= button_count}

    def tool_orientation(self, xyzw: Sequence[float], now: float) -> str | None:
        """The end effector's orientation (quaternion x, y, z, w in the command frame), for the ``tool`` frame;
        an error message, and the old one dropped, when it is not a rotation."""
        try:
            self._tool, self._tool_time = matrix_from_quaternion(xyzw), now
        except ValueError as err:
            self._tool, self._tool_time = None, -math.inf
            return f"tool orientation: {err}"
        return None

    def rotation(self, now: float) -> np.ndarray | None:
        """Device axes -> command frame now; None in the ``tool`` frame without a fresh tool orientation."""
        if self.config.operator_frame == "base":
            return self._yaw
        if self._tool is None or now - self._tool_time > self.config.tool_pose_timeout:
            return None
        return self._tool @ self._yaw

    def update(self, axes: Sequence[float], buttons: Sequence[int], now: float) -> GateOutput:
        """Advance the gate with the latest device state at monotonic time ``now``.

        Corrupt axis values (not finite, or beyond ``CORRUPT_AXIS``) count as zero deflection.
        """
        if len(axes) != len(AXES):
            raise ValueError(f"expected {len(AXES)} axes ({', '.join(AXES)}), got {len(axes)}")
        cfg = self.config
        corrupt = corrupt_axes(axes)
        clean = [0.0 if i in corrupt else a for i, a in enumerate(axes)]
        deflection = max((abs(a) for a, on in zip(clean, cfg.active) if on), default=0.0)
        shaped = [apply_deadband(a, cfg.deadband) if on else 0.0 for a, on in zip(clean, cfg.active)]
        device = np.array([s * scale * sign for s, scale, sign in zip(shaped, cfg.axis_scale, cfg.axis_sign)])
        rotation, frame_error = self.rotation(now), ""
        if rotation is None:
            twist = ZERO_TWIST
            if device.any():
                frame_error = "operator_frame tool: no fresh end-effector orientation (ee_pose): command zero"
        else:
            twist = tuple(float(v) + 0.0 for v in np.concatenate([rotation @ device[:3], rotation @ device[3:]]))

        buttons, chord_events = self._chords.update(buttons, now)
        pressed = self._pressed_edges(buttons)
        takeover = self._takeover_active(buttons, pressed)
        gripper_changed = self._advance_gripper(pressed)
        gripper_pressed = bool(pressed & {cfg.buttons.gripper_toggle, cfg.buttons.gripper_open, cfg.buttons.gripper_close})
        changed, reason = self._advance_engagement(deflection, takeover, gripper_pressed, now)
        events = tuple(e for e in EPISODE_REQUESTS if getattr(cfg.buttons, e) in pressed) + chord_events
        return GateOutput(twist, self._engaged, changed, reason, self._gripper, gripper_changed, events, frame_error)

    def device_lost(self) -> GateOutput:
        """The device vanished: zero command and idle at once."""
        was_engaged = self._engaged
        self._engaged = False
        self._latched = False
        self._arming_since = None
        self._previous_buttons = ()
        self._chords = Chords(self.config.chords)
        reason = "device lost" if was_engaged else ""
        return GateOutput(ZERO_TWIST, False, was_engaged, reason, self._gripper, False, ())

    # -- internals -------------------------------------------------------------------------

    def _pressed_edges(self, buttons: Sequence[int]) -> set[int]:
        current = tuple(1 if b else 0 for b in buttons)
        previous = self._previous_buttons + (0,) * max(0, len(current) - len(self._previous_buttons))
        self._previous_buttons = current
        return {i for i, (now_b, before) in enumerate(zip(current, previous)) if now_b and not before}

    def _takeover_active(self, buttons: Sequence[int], pressed: set[int]) -> bool:
        index = self.config.buttons.takeover
        if index < 0:
            return False
        if self.config.takeover_mode == "toggle":
            if index in pressed:
                self._latched = not self._latched
            return self._latched
        return index < len(buttons) and bool(buttons[index])

    def _advance_engagement(self, deflection: float, takeover: bool, gripper_pressed: bool, now: float) -> tuple[bool, str]:
        cfg = self.config
        if not self._engaged:
            if takeover:
                return self._engage(now, "takeover button")
            if gripper_pressed:
                return self._engage(now, "gripper button")
            if deflection > cfg.engage_threshold:
                if self._arming_since is None:
                    self._arming_since = now
                if now - self._arming_since >= cfg.engage_time:
                    return self._engage(now, f"deflection {deflection:.2f} > {cfg.engage_threshold:.2f}")
            else:
                self._arming_since = None
            return False, ""
        if takeover or gripper_pressed or deflection > cfg.deadband:
            self._last_active = now
            return False, ""
        if now - self._last_active >= cfg.release_time:
            self._engaged = False
            self._arming_since = None
            return True, f"released: inside the deadband for {cfg.release_time:.2f} s"
        return False, ""

    def _engage(self, now: float, reason: str) -> tuple[bool, str]:
        self._engaged = True
        self._arming_since = None
        self._last_active = now
        return True, reason

    def _advance_gripper(self, pressed: set[int]) -> bool:
        b = self.config.buttons
        before = self._gripper
        if b.gripper_toggle in pressed:
            self._gripper = 0.0 if self._gripper >= 0.5 else 1.0
        if b.gripper_open in pressed:
            self._gripper = 0.0
        if b.gripper_close in pressed:
            self._gripper = 1.0
        return self._gripper != before
