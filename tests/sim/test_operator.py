import numpy as np
import pytest

from iil_robot.sim.expert import expert_action
from iil_robot.sim.operator import SimOperator, SimOperatorConfig
from iil_robot.sim.skill import OperatorSkill
from iil_robot.sim.tasks import FetchTaskConfig, FetchTaskEnv, task_spec


@pytest.fixture(scope="module")
def reach():
    env = FetchTaskEnv(FetchTaskConfig(task="reach"))
    obs, _ = env.reset(seed=0)
    return env.task, obs


def decisions(config, task, obs, ticks, policy_action=(0.0, 0.0, 0.0, 0.0), seed=0):
    operator = SimOperator(config, task, np.random.default_rng(seed))
    return [operator.act(obs, np.array(policy_action)) for _ in range(ticks)]


@pytest.mark.parametrize("p", [0.02, 0.1, 0.3])
def test_random_model_steps_in_at_rate_p(reach, p):
    task, obs = reach
    log = decisions(SimOperatorConfig(model="random", random_prob=p, takeover_steps=3), task, obs, 20_000)
    # Onsets per tick the operator judged: not while it drives, nor in the tick it hands back.
    policy_ticks = sum(not d.in_control and not d.offset for d in log) + sum(d.onset for d in log)
    rate = sum(d.onset for d in log) / policy_ticks
    assert rate == pytest.approx(p, abs=4 * np.sqrt(p * (1 - p) / policy_ticks))


def test_an_intervention_lasts_k_ticks_then_hands_back(reach):
    task, obs = reach
    log = decisions(SimOperatorConfig(model="random", random_prob=1.0, takeover_steps=4), task, obs, 10)
    assert [d.in_control for d in log] == [True] * 4 + [False] + [True] * 4 + [False]
    assert [d.onset for d in log] == [True, False, False, False, False] * 2
    assert [d.offset for d in log] == [False] * 4 + [True] + [False] * 4 + [True]
    assert log[4].reason == "released after 4 ticks"


def test_demo_mode_controls_every_tick(reach):
    task, obs = reach
    log = decisions(SimOperatorConfig(model="demo"), task, obs, 50)
    assert all(d.in_control and d.action is not None for d in log)
    assert [d.onset for d in log] == [True] + [False] * 49


def test_demo_mode_needs_no_policy(reach):
    task, obs = reach
    operator = SimOperator(SimOperatorConfig(model="demo"), task, np.random.default_rng(0))
    assert operator.act(obs).in_control


def test_operator_accepts_a_task_state_as_well_as_an_observation(reach):
    task, obs = reach
    from_obs = decisions(SimOperatorConfig(model="demo"), task, obs, 1)[0]
    from_state = decisions(SimOperatorConfig(model="demo"), task, task_state(task, obs), 1)[0]
    np.testing.assert_array_equal(from_obs.action, from_state.action)


def test_never_mode_never_steps_in(reach):
    task, obs = reach
    opposite = -expert_action(task_state(task, obs), task)
    log = decisions(SimOperatorConfig(model="never"), task, obs, 200, policy_action=opposite)
    assert not any(d.in_control or d.onset or d.action is not None for d in log)


def task_state(task, obs):
    from iil_robot.sim.state import TaskState

    return TaskState.from_obs(obs, task)


@pytest.mark.parametrize(
    "config, reason_start",
    [
        (SimOperatorConfig(model="random", random_prob=0.2), "random: u="),
        (SimOperatorConfig(model="value"), "value: Q(s,a_policy)="),
        (SimOperatorConfig(model="demo"), "demo:"),
    ],
)
def test_every_intervention_carries_its_model_and_reason(reach, config, reason_start):
    task, obs = reach
    opposite = -expert_action(task_state(task, obs), task)
    log = decisions(config, task, obs, 300, policy_action=opposite)
    in_control = [d for d in log if d.in_control]
    assert in_control and sum(d.onset for d in log) >= 1
    assert all(d.model == config.model and d.reason.startswith(reason_start) for d in in_control)
    if config.model == "value":
        onset = next(d for d in log if d.onset)
        assert onset.q_policy < 0.97 * onset.q_reference
        assert f"{onset.q_policy:.3f} < 0.97·Q(s,a_ref)={onset.q_reference:.3f}" in onset.reason


def test_value_model_leaves_the_expert_alone(reach):
    task, obs = reach
    log = decisions(SimOperatorConfig(model="value"), task, obs, 100, policy_action=expert_action(task_state(task, obs), task))
    assert not any(d.in_control for d in log)


def test_reaction_delay_steps_in_that_many_ticks_after_the_bad_action(reach):
    task, obs = reach
    good = expert_action(task_state(task, obs), task)
    config = SimOperatorConfig(model="value", beta=1.0, skill=OperatorSkill(reaction_delay=3))
    operator = SimOperator(config, task, np.random.default_rng(0))
    proposals = [good, good, -good, good, good, good, good]
    onsets = [operator.act(obs, a).onset for a in proposals]
    assert onsets == [False, False, False, False, False, True, False]


def test_same_seed_gives_the_same_decisions(reach):
    task, obs = reach
    config = SimOperatorConfig(model="random", random_prob=0.1, level=0.5)
    first = decisions(config, task, obs, 300, seed=3)
    again = decisions(config, task, obs, 300, seed=3)
    assert [(d.in_control, d.onset, None if d.action is None else tuple(d.action)) for d in first] == [
        (d.in_control, d.onset, None if d.action is None else tuple(d.action)) for d in again
    ]


def test_release_on_track_hands_back_once_progress_recovers():
    env = FetchTaskEnv(FetchTaskConfig(task="reach"))
    obs, _ = env.reset(seed=5)
    config = SimOperatorConfig(model="value", beta=1.0, takeover_steps=50, release_on_track=True,
                               skill=OperatorSkill(reaction_delay=2))
    operator = SimOperator(config, env.task, np.random.default_rng(0))
    log = []
    for _ in range(12):
        away = -expert_action(env.state(), env.task)  # the policy keeps moving away
        decision = operator.act(obs, away)
        log.append(decision)
        obs, _, terminated, *_ = env.step(decision.action if decision.in_control else away)
        if terminated:
            break
    onset = next(i for i, d in enumerate(log) if d.onset)
    release = next(i for i, d in enumerate(log) if d.offset)
    assert onset == 2  # reacts to tick 0, two ticks late
    # two bad ticks to undo, plus two ticks of lag in seeing that they are undone
    assert 4 <= release - onset < 10 and log[release].reason == "released: back on track"


@pytest.mark.parametrize(
    "field, value",
    [("model", "sometimes"), ("level", 1.5), ("takeover_steps", 0), ("beta", 2.0), ("discount", 1.0)],
)
def test_bad_operator_config_is_rejected(field, value):
    with pytest.raises(ValueError, match=field if field != "model" else "operator model"):
        SimOperatorConfig(**{field: value})


def test_observation_of_the_wrong_task_is_rejected():
    operator = SimOperator(SimOperatorConfig(), task_spec("push"), np.random.default_rng(0))
    with pytest.raises(ValueError, match="shape"):
        operator.act(np.zeros(13, dtype=np.float32), np.zeros(4))
