"""Task-progress value: how close a state is to success, in ticks of the scripted optimum.

The value-based intervention model of RLIF (Luo et al., 2023, "RLIF: Interactive Imitation
Learning as Reinforcement Learning") compares a policy action's value with a reference
action's value under some reference Q. Here the reference is computed from the sim state:

    T(s)    = ticks the scripted expert still needs to succeed from s (path length at its
              cruise speed plus a few ticks to close the fingers),
    V(s)    = γ^T(s),
    Q(s, a) = V(ŝ'(s, a)),   ŝ' a one-step kinematic prediction (`predict`).

So ``Q(s, a_policy) < α · Q(s, a_ref)`` means "the policy action costs more than
log(α) / log(γ) ticks of progress compared with the reference action" (0.59 ticks at
α = 0.97, γ = 0.95). The prediction needs no simulator: the gripper moves by v·dt, a held
block moves with it, a block in front of a pushing gripper is pushed ahead, fingers move
half-way to their commanded opening (stopping at the block). Everything is read from the
`TaskState`, so an operator that only sees the published poses computes the same values.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from iil_robot.sim.expert import (
    BLOCK_HALF_SIZE_M,
    HELD_OPENING_M,
    ExpertConfig,
    is_holding,
    is_pushing,
    path_hits_block,
    push_geometry,
)
from iil_robot.sim.spec import FINGER_OPEN_M, SUCCESS_THRESHOLD_M, TaskSpec
from iil_robot.sim.state import TaskState

__all__ = ["action_value", "predict", "progress_value", "time_to_go"]

CLOSE_TICKS = 2.0
"""Ticks the fingers need to close on the block (measured: 0.100 → 0.043 → 0.048)."""
HELD_OPENING = 0.048
"""Finger opening when closed on the block [m]."""
FULL_OPENING = 2 * FINGER_OPEN_M
"""Finger opening when fully open [m]."""
PUSH_CONTACT_M = 0.04
"""Gripper-to-block-centre distance at which a pushing gripper touches the block [m]."""


def time_to_go(state: TaskState, task: TaskSpec, expert: ExpertConfig = ExpertConfig()) -> float:
    """Ticks the scripted optimum still needs from ``state`` (0 once successful)."""
    per_tick = expert.speed * task.dt
    if task.name == "reach":
        return _beyond_success(state.goal_distance()) / per_tick
    if task.name == "push":
        return _push_path(state, expert) / per_tick
    return _pick_path(state, expert) / per_tick + _pick_finger_ticks(state, expert)


def progress_value(state: TaskState, task: TaskSpec, discount: float, expert: ExpertConfig = ExpertConfig()) -> float:
    """V(s) = discount ** time_to_go(s), in (0, 1]; 1 at success."""
    return float(discount ** time_to_go(state, task, expert))


def action_value(
    state: TaskState, action: np.ndarray, task: TaskSpec, discount: float, expert: ExpertConfig = ExpertConfig()
) -> float:
    """Q(s, a) = V of the one-step prediction of taking ``action`` in ``state``."""
    return progress_value(predict(state, action, task), task, discount, expert)


def predict(state: TaskState, action: np.ndarray, task: TaskSpec) -> TaskState:
    """Kinematic one-tick prediction of ``[vx, vy, vz, closure]`` from ``state``."""
    action = np.asarray(action, dtype=np.float64)
    velocity = np.clip(action[:3], -task.max_speed, task.max_speed)
    grip = state.grip_pos + velocity * task.dt
    block = state.object_pos
    opening = state.finger_opening
    if task.gripper_enabled:
        closure = float(np.clip(action[3], 0.0, 1.0))
        holding = is_holding(state)
        if holding and closure >= 0.5:
            block = block + (grip - state.grip_pos)
        else:
            opening = _predict_opening(state, closure)
    elif task.name == "push":
        block = _predict_push(state, grip)
    return replace(state, grip_pos=grip, object_pos=block, finger_opening=opening)


# --- pieces -----------------------------------------------------------------------------
def _beyond_success(distance: float) -> float:
    return max(0.0, distance - SUCCESS_THRESHOLD_M)


def _pick_path(state: TaskState, expert: ExpertConfig) -> float:
    carry = _beyond_success(state.goal_distance())
    if is_holding(state):
        return carry
    offset = state.object_pos - state.grip_pos
    horizontal = float(np.linalg.norm(offset[:2]))
    if horizontal < 2 * expert.align_tolerance and offset[2] > -expert.hover_height - 0.01:
        return float(np.linalg.norm(offset)) + carry  # over the block: straight down
    hover = state.object_pos + np.array([0.0, 0.0, expert.hover_height])
    return float(np.linalg.norm(hover - state.grip_pos)) + expert.hover_height + carry


def _pick_finger_ticks(state: TaskState, expert: ExpertConfig) -> float:
    """Ticks to close on the block, plus ticks to open first if closed next to it."""
    if is_holding(state):
        return 0.0
    left_to_close = (state.finger_opening - HELD_OPENING) / (FULL_OPENING - HELD_OPENING)
    offset = state.object_pos - state.grip_pos
    at_block = float(np.linalg.norm(offset[:2])) < expert.align_tolerance and abs(offset[2]) < 0.01
    if at_block:
        return CLOSE_TICKS * float(np.clip(left_to_close, 0.0, 1.0))
    near_low = float(np.linalg.norm(offset[:2])) < 2 * expert.align_tolerance and offset[2] > -expert.hover_height + 0.01
    to_open = CLOSE_TICKS * float(np.clip(1.0 - state.finger_opening / FULL_OPENING, 0.0, 1.0)) if near_low else 0.0
    return CLOSE_TICKS + to_open


def _push_path(state: TaskState, expert: ExpertConfig) -> float:
    """Mirrors the push expert: reach the start pose behind the block (over it if it is in
    the way), then push it the remaining distance."""
    block, grip = state.object_pos, state.grip_pos
    remaining = _beyond_success(state.goal_distance())
    direction, along, lateral = push_geometry(state, expert)
    push_z = block[2] - expert.push_depth
    if is_pushing(state, expert):
        return max(0.0, -along - PUSH_CONTACT_M) + lateral + abs(grip[2] - push_z) + remaining
    start = block[:2] - direction * expert.push_standoff
    horizontal = float(np.linalg.norm(start - grip[:2]))
    if horizontal >= 0.01 and path_hits_block(grip[:2], start, block[:2]):
        hover_z = block[2] + expert.hover_height
        return max(0.0, hover_z - grip[2]) + horizontal + (hover_z - push_z) + remaining
    return float(np.hypot(horizontal, grip[2] - push_z)) + remaining


def _predict_opening(state: TaskState, closure: float) -> float:
    target = (1.0 - closure) * FULL_OPENING
    opening = state.finger_opening + 0.5 * (target - state.finger_opening)
    offset = state.object_pos - state.grip_pos if state.object_pos is not None else None
    block_between = offset is not None and float(np.linalg.norm(offset)) < 0.02
    if block_between and state.finger_opening > HELD_OPENING_M[0]:
        opening = max(opening, HELD_OPENING)  # the block stops the fingers
    return float(opening)


def _predict_push(state: TaskState, grip: np.ndarray) -> np.ndarray:
    moved = replace(state, grip_pos=grip)
    direction, along, lateral = push_geometry(moved)
    low = abs(grip[2] - state.object_pos[2]) < 0.02
    if low and lateral < BLOCK_HALF_SIZE_M and -PUSH_CONTACT_M < along < 0.0:
        block = state.object_pos.copy()
        block[:2] += direction * (along + PUSH_CONTACT_M)
        return block
    return state.object_pos
