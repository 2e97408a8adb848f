"""The value-based model with a deliberately bad policy: half the ticks a bad action, half the
expert's (slightly noisy). It must step in mostly on the bad ticks and rarely on the good ones.

Measured (defaults β = 0.95, α = 0.97, γ = 0.95; k = 1, no reaction delay):
- bad = a random direction at cruise speed, random gripper: precision 0.96–1.00, false-alarm
  rate 0–0.02, recall 0.56–0.69 (a random direction often still makes progress, so it is
  not always bad); push over 40 episodes: precision 0.97, false alarms 0.019, recall 0.61;
- bad = the expert's command reversed (gripper flipped): recall 0.86–0.97 (β = 0.95 caps it;
  reversing a near-zero command is harmless), false alarms ≤ 0.04.
The thresholds leave room for other seeds: precision ≥ 0.9, false alarms ≤ 0.05.
"""
import numpy as np
import pytest

from iil_robot.sim.expert import expert_action
from iil_robot.sim.operator import SimOperator, SimOperatorConfig
from iil_robot.sim.tasks import FetchTaskConfig, FetchTaskEnv

MIN_PRECISION = 0.9
MAX_FALSE_ALARM_RATE = 0.05


def bad_action(kind, reference, rng):
    if kind == "reverse":
        return np.r_[-reference[:3], 1.0 - reference[3]]
    direction = rng.normal(size=3)
    return np.r_[0.25 * direction / np.linalg.norm(direction), float(rng.random() < 0.5)]


def intervention_counts(task, kind, episodes):
    env = FetchTaskEnv(FetchTaskConfig(task=task))
    rng = np.random.default_rng(0)
    operator = SimOperator(SimOperatorConfig(model="value", takeover_steps=1), env.task, np.random.default_rng(1))
    judged = {"bad": 0, "good": 0}
    onsets = {"bad": 0, "good": 0}
    for episode in range(episodes):
        obs, _ = env.reset(seed=episode)
        operator.reset()
        done = False
        while not done:
            reference = expert_action(env.state(), env.task)
            if rng.random() < 0.5:
                label, proposal = "bad", bad_action(kind, reference, rng)
            else:
                label, proposal = "good", np.r_[reference[:3] + rng.normal(0.0, 0.03, 3), reference[3]]
            decision = operator.act(obs, proposal)
            if decision.onset or not (decision.in_control or decision.offset):  # it judged this proposal
                judged[label] += 1
                onsets[label] += decision.onset
            obs, _, terminated, truncated, _ = env.step(decision.action if decision.in_control else proposal)
            done = terminated or truncated
    env.close()
    return judged, onsets


@pytest.mark.parametrize("task, episodes", [("reach", 30), ("push", 8), ("pick_and_place", 8)])
def test_value_model_steps_in_on_bad_actions_not_on_good_ones(task, episodes):
    judged, onsets = intervention_counts(task, "random", episodes)
    precision = onsets["bad"] / (onsets["bad"] + onsets["good"])
    false_alarm_rate = onsets["good"] / judged["good"]
    recall = onsets["bad"] / judged["bad"]
    assert judged["bad"] > 40 and judged["good"] > 40
    assert precision >= MIN_PRECISION, (precision, judged, onsets)
    assert false_alarm_rate <= MAX_FALSE_ALARM_RATE, (false_alarm_rate, judged, onsets)
    assert recall >= 0.4, (recall, judged, onsets)


@pytest.mark.parametrize("task", ["push", "pick_and_place"])
def test_value_model_catches_nearly_every_reversed_action(task):
    judged, onsets = intervention_counts(task, "reverse", 5)
    assert onsets["bad"] / judged["bad"] >= 0.8
    assert onsets["good"] / judged["good"] <= MAX_FALSE_ALARM_RATE
