"""DAgger's β schedule and mixing, and DART's clean labels, in the simulated operator and the loop."""
from dataclasses import replace

import numpy as np
import pytest

from iil_robot.bench.learning_loop import LoopConfig, _Session, dagger_beta
from iil_robot.learners.configs import LearnerConfigs
from iil_robot.learners.hgdagger import HGDAggerConfig
from iil_robot.sim.operator import SimOperator, SimOperatorConfig
from iil_robot.sim.tasks import FetchTaskConfig, FetchTaskEnv


@pytest.mark.parametrize("schedule, expected", [
    ("decay", [1.0, 0.5, 0.25, 0.125]),
    ("first", [1.0, 0.0, 0.0, 0.0]),
    ("linear", [1.0, 0.75, 0.5, 0.25, 0.0, 0.0]),
])
def test_dagger_beta_round_by_round(schedule, expected):
    assert [dagger_beta(schedule, i, p=0.5, rounds=4) for i in range(1, len(expected) + 1)] == pytest.approx(expected)


def test_dagger_rounds_count_from_one():
    with pytest.raises(ValueError):
        dagger_beta("decay", 0)


@pytest.fixture(scope="module")
def env():
    env = FetchTaskEnv(FetchTaskConfig(task="reach"))
    yield env
    env.close()


@pytest.mark.parametrize("beta", [0.0, 0.3, 1.0])
def test_dagger_operator_drives_with_probability_beta_and_labels_every_tick(env, beta):
    obs, _ = env.reset(seed=0)
    operator = SimOperator(SimOperatorConfig(model="dagger", mixing=beta), env.task, np.random.default_rng(0))
    log = [operator.act(obs, np.zeros(4)) for _ in range(4000)]
    assert all(d.label is not None for d in log)
    assert all(np.array_equal(d.action, d.label) for d in log if d.in_control)
    assert np.mean([d.in_control for d in log]) == pytest.approx(beta, abs=0.03)
    driving = [d.in_control for d in log]
    assert [d.onset for d in log] == [now and not before for before, now in zip([False] + driving, driving)]


def test_dart_noise_has_the_set_scale_and_leaves_the_command_clean(env):
    obs, _ = env.reset(seed=0)
    noisy = SimOperator(SimOperatorConfig(model="demo", dart_noise=0.05), env.task, np.random.default_rng(3))
    clean = SimOperator(SimOperatorConfig(model="demo"), env.task, np.random.default_rng(3))
    first_noisy, first_clean = noisy.act(obs), clean.act(obs)
    assert np.array_equal(first_noisy.action, first_clean.action) and first_clean.dart_noise is None
    noise = np.array([noisy.act(obs).dart_noise for _ in range(5000)])
    assert noise.std() == pytest.approx(0.05, rel=0.05) and abs(noise.mean()) < 0.005


def small(method: str, **kw) -> LoopConfig:
    return LoopConfig(task="reach", level=0.9, method=method, demo_episodes=1, pretrain_updates=0,
                      learners=LearnerConfigs(hgdagger=HGDAggerConfig(hidden=(8,), ensemble=2, batch_size=8)), **kw)


def close_episode(session: _Session) -> None:
    """The live labeller closes an episode when a later step arrives; here there is none."""
    for labelled in session.trainer.labeller.flush():
        session.trainer.add_labelled(labelled)


def test_dart_labels_are_the_clean_commands_while_the_arm_executes_the_noisy_ones(env):
    session = _Session(small("dart", dart_noise=0.1), env)
    demo = SimOperator(replace(session.operator_config, model="demo"), env.task, np.random.default_rng(1))  # as the demos
    decisions, executed = [], []
    act, step = demo.act, env.step
    demo.act = lambda *a, **k: decisions.append(act(*a, **k)) or decisions[-1]
    env.step = lambda command: executed.append(np.array(command)) or step(command)
    try:
        session._run(demo, seed=5, learn=True)
    finally:
        del env.step
    close_episode(session)
    drove = [i for i, d in enumerate(decisions) if d.in_control]
    assert drove, "the operator must have driven some ticks"
    labels = session.trainer.prior.rows()[1]  # the operator's commands, in the unit box
    clean = session.trainer.action_box.to_unit(np.array([decisions[i].action for i in drove], np.float32))
    assert len(labels) == len(drove) and np.allclose(labels, clean, atol=1e-6)
    offsets = np.array([executed[i][:3] - decisions[i].action[:3] for i in drove])
    assert np.abs(offsets).max() > 0.02  # the arm got the perturbed command


def test_dagger_labels_every_visited_tick_with_the_operators_command(env):
    session = _Session(small("dagger"), env)
    session.operator.config = replace(session.operator.config, mixing=0.5)
    decisions = []
    act = session.operator.act
    session.operator.act = lambda *a, **k: decisions.append(act(*a, **k)) or decisions[-1]
    _, operated = session._run(session.operator, seed=7, learn=True)
    close_episode(session)
    assert 0.2 < np.mean(operated) < 0.8  # both drove
    labels = session.trainer.prior.rows()[1]
    expected = session.trainer.action_box.to_unit(np.array([d.label for d in decisions], np.float32))
    assert len(labels) == len(decisions) and np.allclose(labels, expected, atol=1e-6)


def test_thrifty_asks_for_help_and_the_robot_gated_operator_answers_every_request():
    from iil_robot.acting.policy import HelpConfig
    from iil_robot.bench.learning_loop import run_loop

    small = dict(task="reach", level=0.6, env_steps=200, demo_episodes=1, eval_every=200, eval_episodes=1, refresh_every=50,
                 updates_per_step=0.1, pretrain_updates=5,
                 learners=LearnerConfigs(hgdagger=HGDAggerConfig(hidden=(16, 16), batch_size=8, ensemble=2)),
                 help=HelpConfig(enabled=True, min_ticks=20))
    result = run_loop(LoopConfig(method="thrifty", **small))
    assert result.requests_raised > 0 and 0 <= result.requests_needed <= result.requests_raised
    assert result.takeovers == result.requests_raised  # the operator steps in only when asked, every time it is asked
    assert sum(result.step_interventions) >= result.takeovers
    assert run_loop(LoopConfig(method="hgdagger", **small)).requests_raised is None  # not robot-gated: no requests
