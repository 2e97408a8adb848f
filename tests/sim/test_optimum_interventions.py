"""The intervention rate an operator imposes on the scripted optimum: the floor a learner's rate can reach."""
import pytest

from iil_robot.sim.operator import SimOperatorConfig
from iil_robot.sim.rollout import optimum_intervention_rate


def test_a_perfect_operator_never_takes_over_from_the_optimum():
    assert optimum_intervention_rate("push", SimOperatorConfig(level=1.0), episodes=5, seed=11) == 0.0


def test_a_poorer_operator_takes_over_from_the_optimum_more_often():
    good = optimum_intervention_rate("reach", SimOperatorConfig(level=0.9), episodes=10, seed=11)
    poor = optimum_intervention_rate("reach", SimOperatorConfig(level=0.3), episodes=10, seed=11)
    assert 0.0 <= good < 0.1 < 0.3 < poor <= 1.0, (good, poor)


def test_it_refuses_an_env_of_another_task():
    from iil_robot.sim.tasks import FetchTaskConfig

    with pytest.raises(ValueError, match="not 'push'"):
        optimum_intervention_rate("push", SimOperatorConfig(), episodes=1, seed=0, env_config=FetchTaskConfig(task="reach"))
