"""The simulated operator answering the policy's help requests (ThriftyDAgger's robot-gated setting)."""
import numpy as np
import pytest

from iil_robot.sim.expert import ExpertConfig, expert_action
from iil_robot.sim.operator import SimOperator, SimOperatorConfig
from iil_robot.sim.state import TaskState
from iil_robot.sim.tasks import FetchTaskConfig, FetchTaskEnv


@pytest.fixture(scope="module")
def reach():
    env = FetchTaskEnv(FetchTaskConfig(task="reach"))
    obs, _ = env.reset(seed=0)
    env.close()
    good = expert_action(TaskState.from_obs(obs, env.task), env.task, ExpertConfig())
    bad = np.array([-good[0], -good[1], -good[2], good[3]])
    return env.task, obs, good, bad


def run(operator, obs, action, requests):
    return [operator.act(obs, action, help_requested=asked) for asked in requests]


def test_the_robot_gated_operator_steps_in_only_when_asked(reach):
    task, obs, _, bad = reach
    operator = SimOperator(SimOperatorConfig(model="robot_gated", level=1.0), task, np.random.default_rng(0))
    assert not any(d.in_control for d in run(operator, obs, bad, [False] * 50))  # a bad policy, but nobody asked
    answered = run(operator, obs, bad, [True, True, True, False, False])
    assert [d.in_control for d in answered] == [True, True, True, False, False]
    assert [d.onset for d in answered] == [True, False, False, False, False]
    assert answered[3].offset and answered[3].reason.startswith("handed back")  # the request was withdrawn
    assert answered[0].needed is True and answered[0].action is not None


def test_a_request_is_judged_needed_only_when_the_policys_action_looks_bad(reach):
    task, obs, good, bad = reach
    verdicts = []
    for action in (good, bad):
        operator = SimOperator(SimOperatorConfig(model="robot_gated", level=1.0), task, np.random.default_rng(0))
        verdicts.append(operator.act(obs, action, help_requested=True).needed)
    assert verdicts == [False, True]


def test_an_answer_lasts_at_most_answer_max_steps_then_the_operator_lets_go(reach):
    task, obs, _, bad = reach
    operator = SimOperator(SimOperatorConfig(model="robot_gated", answer_max_steps=3), task, np.random.default_rng(0))
    log = run(operator, obs, bad, [True] * 8)
    assert [d.in_control for d in log] == [True, True, True, False, True, True, True, False]
    assert log[3].offset and log[3].reason == "released after 3 ticks answering a help request"
    assert [d.onset for d in log].count(True) == 2  # still asked after letting go: a new answer


@pytest.mark.parametrize("config, answers", [
    (SimOperatorConfig(model="random", random_prob=0.0), False),  # judges on its own, ignores requests
    (SimOperatorConfig(model="random", random_prob=0.0, answers_requests=True), True),
    (SimOperatorConfig(model="never", answers_requests=True), False),  # evaluation rollouts: nobody answers
])
def test_other_models_answer_requests_only_when_configured(reach, config, answers):
    task, obs, good, _ = reach
    operator = SimOperator(config, task, np.random.default_rng(0))
    assert run(operator, obs, good, [True])[0].in_control is answers
