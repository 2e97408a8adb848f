"""When the simulated operator steps in: the intervention models of RLIF.

Luo et al., 2023, "RLIF: Interactive Imitation Learning as Reinforcement Learning", §6:
- random: intervene with a fixed probability each tick;
- value-based: with probability β, intervene when the policy action's value under a reference
  falls below α times the reference action's value, ``Q(s, a_π) < α · Q(s, a_ref)``
  (the paper uses β = 0.95, α = 0.97). Our reference Q is the task-progress value of
  `iil_robot.sim.progress`, the reference action the scripted optimum's.
Each model returns a `Trigger` saying why, or None.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from iil_robot.sim.expert import ExpertConfig, expert_action
from iil_robot.sim.progress import action_value
from iil_robot.sim.spec import TaskSpec
from iil_robot.sim.state import TaskState

__all__ = ["Trigger", "judge_value", "random_trigger", "value_trigger"]


@dataclass(frozen=True)
class Trigger:
    """Why an intervention starts."""

    reason: str
    q_policy: float | None = None
    q_reference: float | None = None


def random_trigger(probability: float, rng: np.random.Generator) -> Trigger | None:
    """Intervene with ``probability`` (one draw from ``rng``)."""
    u = float(rng.random())
    if u < probability:
        return Trigger(f"random: u={u:.3f} < p={probability:g}")
    return None


def judge_value(state: TaskState, policy_action: np.ndarray, task: TaskSpec, *, alpha: float, discount: float,
                expert: ExpertConfig = ExpertConfig()) -> tuple[bool, float, float]:
    """The value model's verdict without the β draw: (bad, Q(s, a_policy), Q(s, a_ref)), bad when
    ``Q(s, a_policy) < alpha · Q(s, a_ref)``. Also how the operator judges whether a help request was needed."""
    q_policy = action_value(state, policy_action, task, discount, expert)
    q_reference = action_value(state, expert_action(state, task, expert), task, discount, expert)
    return q_policy < alpha * q_reference, q_policy, q_reference


def value_trigger(
    state: TaskState,
    policy_action: np.ndarray,
    task: TaskSpec,
    rng: np.random.Generator,
    *,
    beta: float,
    alpha: float,
    discount: float,
    expert: ExpertConfig = ExpertConfig(),
) -> Trigger | None:
    """RLIF's value-based model with the task-progress value as the reference Q.

    Draws one number from ``rng`` every call, whether or not the action is judged bad.
    """
    bad, q_policy, q_reference = judge_value(state, policy_action, task, alpha=alpha, discount=discount, expert=expert)
    u = float(rng.random())
    if bad and u < beta:
        return Trigger(
            f"value: Q(s,a_policy)={q_policy:.3f} < {alpha:g}·Q(s,a_ref)={q_reference:.3f} "
            f"(u={u:.2f} < β={beta:g})",
            q_policy,
            q_reference,
        )
    return None
