"""Scripted experts: the optimum an operator is measured against, one per Fetch task.

Each expert is a pure function of the `TaskState` (no memory), so it recovers from any state
a policy leaves behind, and a delayed or biased copy of the state gives a delayed or biased
expert. Commands are in the env's units: ``[vx, vy, vz, closure]`` (m/s, 0 open … 1 shut).

Motion is proportional to the position error, ``v = gain · (target − grip)``, with the speed
capped at ``speed`` (norm, not per axis). The targets come from a few geometric phases:

reach           the goal.
push            (gripper shut by Fetch) reach a point behind the block on the goal→block line,
                going over the block if it is in the way, then push along that line.
pick_and_place  hover above the block with open fingers, descend, close, carry it to the goal.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from iil_robot.sim.spec import TaskSpec
from iil_robot.sim.state import TaskState

__all__ = ["ExpertConfig", "expert_action", "is_holding", "is_pushing", "path_hits_block", "push_geometry"]

BLOCK_HALF_SIZE_M = 0.025
"""Half the edge of Fetch's block [m]."""


@dataclass(frozen=True)
class ExpertConfig:
    """Tuning of the scripted experts (defaults: the optimum used as the reference)."""

    speed: float = 0.25
    """Cruise speed cap [m/s] (norm of the velocity)."""
    gain: float = 6.0
    """Proportional gain [1/s]: v = gain × position error until the cap is reached."""
    hover_height: float = 0.05
    """Height above the block centre to approach from [m] (pick: pre-grasp; push: go-over)."""
    align_tolerance: float = 0.01
    """Horizontal error under which the gripper may descend onto the block [m]."""
    push_standoff: float = 0.05
    """Distance behind the block centre where pushing starts [m]."""
    push_depth: float = 0.005
    """How far below the block centre the gripper pushes [m]."""


def expert_action(state: TaskState, task: TaskSpec, config: ExpertConfig = ExpertConfig()) -> np.ndarray:
    """The scripted optimum's command ``[vx, vy, vz, closure]`` in ``state``."""
    if task.name == "reach":
        return _command(state.goal - state.grip_pos, 0.0, config)
    if task.name == "push":
        return _push(state, config)
    return _pick_and_place(state, config)


# --- pick and place ---------------------------------------------------------------------
HELD_OPENING_M = (0.035, 0.065)
"""Finger opening (sum of both joints) when closed on the block; about 0.048 in practice."""
OPEN_OPENING_M = 0.09
"""Finger opening above which the fingers count as open (0.10 fully open)."""


def is_holding(state: TaskState) -> bool:
    """Whether the fingers are closed on the block (block centred between them)."""
    if state.object_pos is None:
        return False
    low, high = HELD_OPENING_M
    return low < state.finger_opening < high and bool(np.linalg.norm(state.object_pos - state.grip_pos) < 0.02)


def _pick_and_place(state: TaskState, config: ExpertConfig) -> np.ndarray:
    grip, block = state.grip_pos, state.object_pos
    if is_holding(state):
        return _command(state.goal - block, 1.0, config)
    offset = block - grip
    horizontal = float(np.linalg.norm(offset[:2]))
    if horizontal < config.align_tolerance and abs(offset[2]) < 0.01:
        return _command(offset, 1.0, config)  # at the block: close
    descending = horizontal < config.align_tolerance or (
        horizontal < 2 * config.align_tolerance and grip[2] < block[2] + config.hover_height - 0.01
    )
    if descending:
        if state.finger_opening < OPEN_OPENING_M and grip[2] < block[2] + config.hover_height - 0.01:
            return _command(np.zeros(3), 0.0, config)  # missed grasp: open before going on
        return _command(offset, 0.0, config)
    hover = block + np.array([0.0, 0.0, config.hover_height])
    return _command(hover - grip, 0.0, config)


# --- push -------------------------------------------------------------------------------
def push_geometry(state: TaskState, config: ExpertConfig = ExpertConfig()) -> tuple[np.ndarray, float, float]:
    """Push direction (unit, horizontal), the gripper's offset along it from the block, and
    its lateral offset from the goal→block line [m]. ``along`` is negative behind the block."""
    block, grip = state.object_pos, state.grip_pos
    to_goal = (state.goal - block)[:2]
    norm = float(np.linalg.norm(to_goal))
    direction = to_goal / norm if norm > 1e-6 else np.array([1.0, 0.0])
    rel = (grip - block)[:2]
    along = float(rel @ direction)
    lateral = float(np.linalg.norm(rel - along * direction))
    return direction, along, lateral


def is_pushing(state: TaskState, config: ExpertConfig = ExpertConfig()) -> bool:
    """Whether the gripper is low behind the block on the goal→block line (push phase)."""
    _, along, lateral = push_geometry(state, config)
    push_z = state.object_pos[2] - config.push_depth
    return along < -BLOCK_HALF_SIZE_M and lateral < 0.015 and abs(state.grip_pos[2] - push_z) < 0.015


def _push(state: TaskState, config: ExpertConfig) -> np.ndarray:
    grip, block = state.grip_pos, state.object_pos
    direction, _, _ = push_geometry(state, config)
    push_z = block[2] - config.push_depth
    if is_pushing(state, config):
        end = state.goal[:2] - direction * config.push_standoff
        target = np.array([end[0], end[1], push_z])
        return _command(target - grip, 1.0, config)
    start = block[:2] - direction * config.push_standoff
    hover_z = block[2] + config.hover_height
    if np.linalg.norm(start - grip[:2]) < 0.01:
        return _command(np.array([start[0], start[1], push_z]) - grip, 1.0, config)
    if path_hits_block(grip[:2], start, block[:2]) and grip[2] < hover_z - 0.01:
        return _command(np.array([grip[0], grip[1], hover_z]) - grip, 1.0, config)  # lift first
    height = hover_z if path_hits_block(grip[:2], start, block[:2]) else push_z
    return _command(np.array([start[0], start[1], height]) - grip, 1.0, config)


def path_hits_block(start: np.ndarray, end: np.ndarray, block: np.ndarray, clearance: float = 0.045) -> bool:
    """Whether the straight horizontal path start→end passes within ``clearance`` of ``block``."""
    segment = end - start
    length2 = float(segment @ segment)
    t = 0.0 if length2 < 1e-12 else float(np.clip((block - start) @ segment / length2, 0.0, 1.0))
    return bool(np.linalg.norm(start + t * segment - block) < clearance)


def _command(error: np.ndarray, closure: float, config: ExpertConfig) -> np.ndarray:
    velocity = config.gain * np.asarray(error, dtype=np.float64)
    speed = float(np.linalg.norm(velocity))
    if speed > config.speed:
        velocity *= config.speed / speed
    return np.array([velocity[0], velocity[1], velocity[2], closure])
