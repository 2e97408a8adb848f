"""What the simulated operator sees: a delayed state with misjudged block and goal positions.

Each tick the operator's `Perception` records the true state and the policy's proposal;
it hands back the record from ``reaction_delay`` ticks ago with the episode's aim errors
added (one offset for the goal, one for the block, drawn at reset). A block the fingers hold
is felt, not seen: it gets no offset.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, replace

import numpy as np

from iil_robot.sim.expert import is_holding
from iil_robot.sim.skill import OperatorSkill
from iil_robot.sim.state import TaskState

__all__ = ["Perception", "Percept"]


@dataclass
class Percept:
    """One tick as the operator remembers it."""

    state: TaskState
    """The state as perceived (aim errors applied)."""
    policy_action: np.ndarray | None
    """What the policy proposed in that tick (None if it proposed nothing)."""
    policy_executed: bool = True
    """Whether the policy's proposal was executed (False while the operator was in control)."""


class Perception:
    """Delay line of `Percept` plus the per-episode aim errors."""

    def __init__(self, skill: OperatorSkill, rng: np.random.Generator) -> None:
        self._skill = skill
        self._rng = rng
        self._history: deque[Percept] = deque(maxlen=skill.reaction_delay + 1)
        self.goal_offset = np.zeros(3)
        self.block_offset = np.zeros(3)

    def reset(self) -> None:
        """Forget the last episode and draw new aim errors."""
        self._history.clear()
        self.goal_offset = self._rng.normal(0.0, 1.0, size=3) * self._skill.aim_error_std
        self.block_offset = self._rng.normal(0.0, 1.0, size=3) * self._skill.aim_error_std

    def observe(self, state: TaskState, policy_action: np.ndarray | None) -> Percept | None:
        """Record this tick; return the tick ``reaction_delay`` ticks ago that the operator
        reacts to now (None in the first ticks of an episode, before there is one)."""
        self._history.append(Percept(self._misjudge(state), policy_action))
        return self._history[0] if len(self._history) == self._history.maxlen else None

    @property
    def seen(self) -> TaskState:
        """The state the operator acts on: ``reaction_delay`` ticks old, or the episode's first."""
        return self._history[0].state

    @property
    def latest(self) -> Percept:
        """The record of the current tick (to mark whether the policy's proposal ran)."""
        return self._history[-1]

    def _misjudge(self, state: TaskState) -> TaskState:
        block = state.object_pos
        if block is not None and not is_holding(state):
            block = block + self.block_offset
        return replace(state, goal=state.goal + self.goal_offset, object_pos=block)
