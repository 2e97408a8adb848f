import pytest

from iil_robot.sim.operator import SimOperatorConfig
from iil_robot.sim.rollout import success_rate

# The scripted optimum solved 300/300 episodes of every task when calibrated
# (iil_robot.sim.calibrate, seeds 100000…); 20 fresh episodes each must all but fail at most one.
EPISODES = 20
MIN_SUCCESS = 0.95


@pytest.mark.parametrize("task", ["reach", "push", "pick_and_place"])
def test_scripted_optimum_solves_the_task(task):
    rate, results = success_rate(task, SimOperatorConfig(level=1.0), EPISODES, seed=2024)
    assert rate >= MIN_SUCCESS, f"{task}: optimum succeeded {rate:.0%} of {EPISODES} episodes"
    assert all(r.operator_steps == r.steps for r in results)  # demo mode: the expert drove every tick
