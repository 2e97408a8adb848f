"""Run episodes of a policy watched by a simulated operator, without ROS.

The executed command each tick is the operator's while it is in control, otherwise the
policy's: the same rule the arbitration mux applies on the robot.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from iil_robot.sim.expert import expert_action
from iil_robot.sim.operator import SimOperator, SimOperatorConfig
from iil_robot.sim.state import TaskState
from iil_robot.sim.tasks import FetchTaskConfig, FetchTaskEnv

__all__ = ["EpisodeResult", "Policy", "optimum_intervention_rate", "run_episode", "success_rate"]

Policy = Callable[[np.ndarray], np.ndarray]
"""Observation → command ``[vx, vy, vz, closure]``."""


@dataclass(frozen=True)
class EpisodeResult:
    """Summary of one episode."""

    success: bool
    steps: int
    interventions: int
    """Intervention onsets."""
    operator_steps: int
    """Ticks the operator was in control."""


def run_episode(env: FetchTaskEnv, operator: SimOperator, policy: Policy | None, seed: int) -> EpisodeResult:
    """One episode from ``env.reset(seed=seed)``; ``policy`` may be None only in "demo" mode.

    Raises:
        ValueError: if the policy is None but the operator leaves a tick to it.
    """
    obs, _ = env.reset(seed=seed)
    operator.reset()
    interventions = operator_steps = 0
    while True:
        proposal = None if policy is None else np.asarray(policy(obs), dtype=np.float64)
        decision = operator.act(obs, proposal)
        if decision.in_control:
            command = decision.action
            operator_steps += 1
            interventions += int(decision.onset)
        elif proposal is None:
            raise ValueError(f"operator model {decision.model!r} left a tick to the policy, but there is none")
        else:
            command = proposal
        obs, _, terminated, truncated, info = env.step(command)
        if terminated or truncated:
            return EpisodeResult(bool(info["is_success"]), env.steps, interventions, operator_steps)


def success_rate(
    task: str,
    operator_config: SimOperatorConfig,
    episodes: int,
    seed: int,
    *,
    env_config: FetchTaskConfig | None = None,
) -> tuple[float, list[EpisodeResult]]:
    """Success rate of ``operator_config`` in "demo" mode (it drives every tick) on ``task``.

    Episode i resets the env with seed ``seed + i``; the operator draws from
    ``np.random.default_rng(seed)``.
    """
    env = FetchTaskEnv(env_config or FetchTaskConfig(task=task))
    if env.task.name != task:
        raise ValueError(f"env_config is for {env.task.name!r}, not {task!r}")
    demo = replace(operator_config, model="demo")
    operator = SimOperator(demo, env.task, np.random.default_rng(seed))
    try:
        results = [run_episode(env, operator, None, seed + i) for i in range(episodes)]
    finally:
        env.close()
    return sum(r.success for r in results) / max(1, episodes), results


def optimum_intervention_rate(
    task: str,
    operator_config: SimOperatorConfig,
    episodes: int,
    seed: int,
    *,
    env_config: FetchTaskConfig | None = None,
) -> float:
    """Share of ticks ``operator_config`` (in its interactive model) is in control while it watches the
    scripted optimum, a policy that always sends ``expert_action`` of the true state.

    No learner can expect a lower intervention rate from this operator: it is what the operator's own
    misjudgements (aim errors, reaction delay, the strictness of its value test) cost a perfect policy.
    Episode i resets the env with seed ``seed + i``; the operator draws from ``np.random.default_rng(seed)``.
    """
    env = FetchTaskEnv(env_config or FetchTaskConfig(task=task))
    if env.task.name != task:
        raise ValueError(f"env_config is for {env.task.name!r}, not {task!r}")
    operator = SimOperator(operator_config, env.task, np.random.default_rng(seed))

    def policy(obs: np.ndarray) -> np.ndarray:
        return expert_action(TaskState.from_obs(obs, env.task), env.task, operator_config.expert)

    try:
        results = [run_episode(env, operator, policy, seed + i) for i in range(episodes)]
    finally:
        env.close()
    return sum(r.operator_steps for r in results) / max(1, sum(r.steps for r in results))
