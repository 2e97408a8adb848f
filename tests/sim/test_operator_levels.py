"""Each quality level hits its expected success rate: level × the scripted optimum.

The level → knobs mapping was calibrated on seeds 100000… (400 episodes per severity); these
40 fresh episodes per task and level must land within TOLERANCE (two binomial standard
deviations at 40 episodes). `iil-robot bench sim` checks the same with 100 episodes and ±0.1.
"""
import pytest

from iil_robot.sim.operator import SimOperatorConfig
from iil_robot.sim.rollout import success_rate

EPISODES = 40
TOLERANCE = 0.16
OPTIMUM = 1.0  # the scripted optimum solves every task (tests/sim/test_expert.py)


@pytest.mark.parametrize("task", ["reach", "push", "pick_and_place"])
@pytest.mark.parametrize("level", [0.9, 0.6, 0.3])
def test_operator_level_hits_its_expected_success_rate(task, level):
    rate, _ = success_rate(task, SimOperatorConfig(level=level), EPISODES, seed=7000)
    assert rate == pytest.approx(level * OPTIMUM, abs=TOLERANCE), f"{task} level {level}: {rate:.2f}"
