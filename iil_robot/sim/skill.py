"""How good the simulated operator is: suboptimality knobs and the quality level behind them.

`OperatorSkill` holds the knobs. `skill_for_level` maps one number, the quality level
ℓ ∈ [0, 1], onto all of them, such that an operator at level ℓ driving whole episodes
succeeds about ℓ × the scripted optimum's rate on that task (ℓ = 1 is the optimum itself).

Two steps. (1) ℓ → severity s ∈ [0, 1], per task, by interpolating the measured
success-vs-severity curve `SUCCESS_CURVE` (re-measure with `iil_robot.sim.calibrate`).
(2) s → knobs, the same linear profile for every task:

================  ===========================  ==========================================
knob              value at severity s          effect
================  ===========================  ==========================================
aim_error_std     A_task · s  (A: reach 0.30,  per-episode misjudged goal / block position
                  push 0.10, pick 0.06 m)      [m]; the main reason a poor operator fails
noise_std         0.05 · s  m/s                fresh Gaussian velocity noise every tick
gain              1 − 0.4 · s                  slower, softer moves (× velocity)
reaction_delay    round(4 · s) ticks           acts on, and judges, a state this old
wrong_move_prob   0.05 · s                     chance per tick of a reversed move with the
                                               gripper command flipped
================  ===========================  ==========================================

Resulting severities (aim error, delay) at the levels used elsewhere:

==============  ===================  ===================  ===================
level           reach                push                 pick_and_place
==============  ===================  ===================  ===================
0.9             0.08 (2.4 cm, 0)     0.05 (0.5 cm, 0)     0.17 (1.0 cm, 1)
0.7             0.11 (3.2 cm, 0)     0.09 (0.9 cm, 0)     0.24 (1.5 cm, 1)
0.6             0.12 (3.7 cm, 0)     0.11 (1.1 cm, 0)     0.27 (1.6 cm, 1)
0.3             0.23 (6.9 cm, 1)     0.24 (2.4 cm, 1)     0.44 (2.6 cm, 2)
==============  ===================  ===================  ===================

Levels below the curve's floor (about 0.08 reach, 0.10 push, 0.07 pick: chance successes of
a flailing operator) all map to severity 1.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from iil_robot.sim.spec import check_task_name

__all__ = [
    "OperatorSkill",
    "degrade_action",
    "severity_for_level",
    "skill_for_level",
    "skill_for_severity",
]


@dataclass(frozen=True)
class OperatorSkill:
    """Suboptimality knobs of the simulated operator (defaults: the scripted optimum)."""

    aim_error_std: float = 0.0
    """Std of a per-episode offset [m], drawn per axis at reset, separately for the block and
    the goal: the operator aims at where it believes they are."""
    noise_std: float = 0.0
    """Std of Gaussian noise added to each velocity axis every tick [m/s]."""
    gain: float = 1.0
    """Multiplier on the expert's velocity (< 1: slower and softer corrections)."""
    reaction_delay: int = 0
    """Ticks of lag: the operator acts on, and judges the policy from, a state this old, so it
    also steps in this many ticks after the action it reacts to."""
    wrong_move_prob: float = 0.0
    """Chance per tick of a wrong move: the velocity reversed and the gripper command flipped."""

    def __post_init__(self) -> None:
        if self.aim_error_std < 0 or self.noise_std < 0:
            raise ValueError(f"aim_error_std and noise_std must be >= 0, got {self}")
        if not 0.0 <= self.gain <= 1.5:
            raise ValueError(f"gain must be in [0, 1.5], got {self.gain}")
        if self.reaction_delay < 0:
            raise ValueError(f"reaction_delay must be >= 0 ticks, got {self.reaction_delay}")
        if not 0.0 <= self.wrong_move_prob <= 1.0:
            raise ValueError(f"wrong_move_prob must be in [0, 1], got {self.wrong_move_prob}")


AIM_ERROR_AT_FULL_SEVERITY_M: dict[str, float] = {"reach": 0.3, "push": 0.1, "pick_and_place": 0.06}
"""Per-task aim error std at severity 1 [m]: large enough that few episodes succeed."""

SUCCESS_CURVE: dict[str, tuple[tuple[float, float], ...]] = {
    "reach": (
        (0.0, 1.0), (0.06, 0.975), (0.08, 0.8975), (0.1, 0.7525), (0.12, 0.6175), (0.14, 0.52),
        (0.16, 0.475), (0.18, 0.41), (0.2, 0.33), (0.22, 0.325), (0.24, 0.2775), (0.26, 0.2575),
        (0.28, 0.235), (0.3, 0.1925), (0.38, 0.155), (0.4, 0.145), (0.6, 0.1075), (0.8, 0.085),
    ),
    "push": (
        (0.0, 1.0), (0.02, 0.9774), (0.04, 0.9347), (0.06, 0.8643), (0.08, 0.7764), (0.1, 0.6658),
        (0.12, 0.5678), (0.16, 0.4774), (0.18, 0.4472), (0.2, 0.402), (0.22, 0.3568),
        (0.24, 0.3116), (0.26, 0.2588), (0.28, 0.2387), (0.3, 0.206), (0.34, 0.191),
        (0.36, 0.1859), (0.38, 0.1633), (0.42, 0.1508), (0.46, 0.1457), (0.48, 0.1432),
        (0.5, 0.1332), (0.6, 0.1206), (0.7, 0.1131), (0.8, 0.1106), (0.9, 0.1055), (1.0, 0.103),
    ),
    "pick_and_place": (
        (0.0, 1.0), (0.04, 0.9925), (0.1, 0.985), (0.12, 0.965), (0.14, 0.9425), (0.16, 0.9225),
        (0.18, 0.8525), (0.22, 0.7675), (0.24, 0.7125), (0.26, 0.6125), (0.28, 0.565), (0.3, 0.51),
        (0.34, 0.42), (0.36, 0.4175), (0.38, 0.4), (0.4, 0.37), (0.42, 0.335), (0.44, 0.2925),
        (0.46, 0.26), (0.48, 0.2225), (0.5, 0.215), (0.6, 0.1525), (0.7, 0.1125), (0.8, 0.0875),
        (0.9, 0.0775), (1.0, 0.07),
    ),
}
"""Per task, measured (severity, success / optimum) points, falling with severity; written by
`iil_robot.sim.calibrate`. Levels below the last point's ratio get severity 1."""


def skill_for_severity(task: str, severity: float) -> OperatorSkill:
    """The knobs at ``severity`` ∈ [0, 1] (0: the scripted optimum; see the module table).

    Raises:
        ValueError: on an unknown task or a severity outside [0, 1].
    """
    check_task_name(task)
    if not 0.0 <= severity <= 1.0:
        raise ValueError(f"severity must be in [0, 1], got {severity}")
    return OperatorSkill(
        aim_error_std=AIM_ERROR_AT_FULL_SEVERITY_M[task] * severity,
        noise_std=0.05 * severity,
        gain=1.0 - 0.4 * severity,
        reaction_delay=round(4 * severity),
        wrong_move_prob=0.05 * severity,
    )


def severity_for_level(task: str, level: float) -> float:
    """The severity whose expected success is ``level`` × optimum: linear interpolation in
    the measured `SUCCESS_CURVE` of the task.

    Raises:
        ValueError: on an unknown task or a level outside [0, 1].
    """
    check_task_name(task)
    if not 0.0 <= level <= 1.0:
        raise ValueError(f"level must be in [0, 1], got {level}")
    severities, ratios = zip(*SUCCESS_CURVE[task])
    # np.interp needs increasing x: walk the curve from its low-success end.
    return float(np.interp(level, ratios[::-1], severities[::-1], left=1.0, right=0.0))


def skill_for_level(task: str, level: float) -> OperatorSkill:
    """The knobs of an operator of quality ``level`` on ``task``.

    Raises:
        ValueError: on an unknown task or a level outside [0, 1].
    """
    return skill_for_severity(task, severity_for_level(task, level))


def degrade_action(action: np.ndarray, skill: OperatorSkill, rng: np.random.Generator) -> tuple[np.ndarray, bool]:
    """Apply gain, noise and wrong moves to an expert command ``[vx, vy, vz, closure]``.

    Returns the command and whether it was a wrong move. Draws from ``rng`` every call (so the
    random stream does not depend on the outcome).
    """
    noise = rng.normal(0.0, 1.0, size=3) * skill.noise_std
    wrong = bool(rng.random() < skill.wrong_move_prob)
    command = np.array(action, dtype=np.float64)
    command[:3] = command[:3] * skill.gain + noise
    if wrong:
        command[:3] = -command[:3]
        command[3] = 1.0 - command[3]
    return command, wrong
