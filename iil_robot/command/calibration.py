"""Operator-frame calibration: which ``operator_yaw`` makes "push the cap away" move the arm away.

``iil-robot doctor --calibrate`` asks the operator, standing where they will work, to push the
cap away from them while the graph runs. It reads the push on the SpaceMouse (its direction in
the device's axes) and watches the end effector move (its direction in the command frame), then
asks whether the arm moved away from them, and if not, which way (left, right, towards them).
Away-from-the-operator in the command frame is then the arm's direction turned back by that
answer, and the yaw that maps the push onto it is

    operator_yaw = arm direction - answer offset - push direction      (degrees, about z)

which holds whatever yaw the gate ran with (the arm's motion already contains it). The result
is a parameter overlay for the robot profile (``spacemouse_gate.operator_frame: base`` and
``operator_yaw``). The device and the arm are passed in, so this runs without either.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Sequence

__all__ = ["ANSWER_OFFSETS", "CalibrationConfig", "CalibrationError", "calibrate", "operator_yaw"]

ANSWER_OFFSETS: dict[str, float] = {"y": 0.0, "l": 90.0, "t": 180.0, "r": -90.0}
"""Where the arm went, seen by the operator, in degrees counter-clockwise from "away from me" (seen from above)."""


class CalibrationError(RuntimeError):
    """The calibration could not measure what it needs; the message says what to check."""


@dataclass(frozen=True)
class CalibrationConfig:
    """How long and how much the push and the arm's motion must be to count."""

    seconds: float = 3.0
    """How long the push is watched (s)."""
    min_deflection: float = 0.3
    """Horizontal deflection (fraction of full scale) that counts as a push."""
    min_motion: float = 0.01
    """Horizontal end-effector travel (m) that counts as the arm moving."""
    period: float = 0.02
    """Seconds between samples."""


def operator_yaw(push_deg: float, arm_deg: float, answer_offset_deg: float) -> float:
    """The yaw (degrees in (-180, 180]) mapping a push at ``push_deg`` (device axes) onto away-from-the-operator."""
    yaw = math.remainder(arm_deg - answer_offset_deg - push_deg, 360.0)
    return 180.0 if yaw == -180.0 else yaw + 0.0


def calibrate(read_axes: Callable[[], Sequence[float]], arm_position: Callable[[], Sequence[float] | None],
              ask: Callable[[str], str], say: Callable[[str], None], config: CalibrationConfig = CalibrationConfig(),
              clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> float:
    """Walk the operator through one push; returns ``operator_yaw`` in whole degrees.

    ``read_axes`` gives the latest SpaceMouse axes (REP-103, normalised); ``arm_position`` the latest end-effector
    x, y, z in the command frame (None before the first pose); ``ask`` shows a question and returns the answer.

    Raises:
        CalibrationError: no push on the device, no end-effector pose, or the arm did not move.
    """
    say("Stand where you will operate the arm, with the SpaceMouse in front of you as you will use it.")
    ask("Press Enter, then push the cap away from you (gently) and hold it until told to let go. ")
    start = arm_position()
    strongest = (0.0, 0.0)
    end = clock() + config.seconds
    while clock() < end:
        axes = read_axes()
        if math.hypot(axes[0], axes[1]) > math.hypot(*strongest):
            strongest = (float(axes[0]), float(axes[1]))
        if start is None:
            start = arm_position()
        sleep(config.period)
    stop = arm_position()
    say("Let go.")
    if math.hypot(*strongest) < config.min_deflection:
        raise CalibrationError(f"no push on the SpaceMouse (largest horizontal deflection {math.hypot(*strongest):.2f} < "
                               f"{config.min_deflection}): push the cap, not just tilt it, and check `iil-robot doctor`")
    if start is None or stop is None:
        raise CalibrationError("no end-effector pose: is the arm's driver running on this ROS domain (--domain-id) and is "
                               "ee_pose remapped as the robot profile says (--robot)?")
    dx, dy = stop[0] - start[0], stop[1] - start[1]
    if math.hypot(dx, dy) < config.min_motion:
        raise CalibrationError(f"the arm moved {math.hypot(dx, dy) * 1e3:.0f} mm: is the graph running (mux, gate), an "
                               "episode or the operator allowed to drive, and the gate engaged by the push?")
    answer = _choice(ask, "Did the arm move away from you? [y/n] ", ("y", "n"))
    if answer == "n":
        answer = _choice(ask, "Which way did it move, seen from you? [l]eft, [r]ight, [t]owards you: ", ("l", "r", "t"))
    push_deg = math.degrees(math.atan2(strongest[1], strongest[0]))
    arm_deg = math.degrees(math.atan2(dy, dx))
    return float(round(operator_yaw(push_deg, arm_deg, ANSWER_OFFSETS[answer])))


def _choice(ask: Callable[[str], str], question: str, choices: tuple[str, ...]) -> str:
    for _ in range(5):
        answer = ask(question).strip().lower()[:1]
        if answer in choices:
            return answer
    raise CalibrationError(f"no answer among {', '.join(choices)}")
