"""ThriftyDAgger's goal-probability critic Q_G: the goal label, the TD target, the weights that carry it."""
import math
import time

import numpy as np
import pytest
import torch

from iil_robot.acting.policy import PolicyConfig, PolicyRunner
from iil_robot.data.actions import ACTION_SPACES
from iil_robot.data.episodes import Episode
from iil_robot.data.labels import label_episode
from iil_robot.data.records import Observation
from iil_robot.learners.buffers import ReplayBuffer
from iil_robot.learners.configs import LearnerConfigs
from iil_robot.learners.hgdagger import HGDAggerConfig, HGDAggerLearner, goal_td_target
from iil_robot.learners.networks import Policy, PolicyShape
from iil_robot.learners.trainer import Trainer, TrainerConfig
from iil_robot.learners.weights import WeightsError, WeightsMeta, decode_policy, encode_policy
from tests.learners.helpers import boundary_task_records, feed, record

TRANSLATION = ACTION_SPACES["translation"].spec  # the default action space's weights

GAMMA = 0.9


def test_goal_td_target_is_the_goal_reward_plus_the_discounted_next_goal_probability():
    successes = torch.tensor([1.0, 0.0, 0.0, 0.0])
    ends = torch.tensor([1.0, 0.0, 1.0, 0.0])  # reached / goes on / timed out / goes on
    next_q = torch.tensor([0.7, 0.8, 0.9, 0.25])
    expected = [1.0, GAMMA * 0.8, 0.0, GAMMA * 0.25]
    torch.testing.assert_close(goal_td_target(successes, ends, next_q, GAMMA), torch.tensor(expected))


def test_the_learner_backs_up_from_its_target_copy_at_the_policys_next_action():
    learner = HGDAggerLearner(2, 4, HGDAggerConfig(hidden=(8,), ensemble=2, batch_size=3, goal_critic=True, goal_discount=GAMMA))
    with torch.no_grad():  # the target copy says Q_G = 0.8 everywhere: zero weights, output bias logit(0.8)
        for p in learner.goal_target.parameters():
            p.zero_()
        learner.goal_target.net.out.bias.fill_(math.log(0.8 / 0.2))
    target = learner.goal_target_values(torch.zeros(3, 2), successes=torch.tensor([1.0, 0.0, 0.0]),
                                        ends=torch.tensor([1.0, 0.0, 1.0]))
    torch.testing.assert_close(target, torch.tensor([1.0, GAMMA * 0.8, 0.0]))


def test_goal_rows_come_from_both_buffers_with_the_success_and_end_columns():
    episodes = boundary_task_records(3, 20)
    trainer = Trainer(TrainerConfig(method="thrifty", min_transitions=1, device="cpu"),
                      LearnerConfigs(hgdagger=HGDAggerConfig(hidden=(8,), ensemble=2, batch_size=4000)))
    feed(trainer, episodes, "success")
    learner, prior, online = trainer.learner, trainer.prior, trainer.online
    closed = trainer.labeller.episodes
    assert closed >= 2 and prior.successes[: len(prior)].sum() + online.successes[: len(online)].sum() == closed  # one each
    observations, actions, next_observations, successes, ends = learner.goal_rows(prior, online, np.random.default_rng(0))
    assert observations.shape == (4000, 1) and actions.shape == (4000, 4) and successes.shape == ends.shape == (4000,)
    assert bool((ends[successes == 1] == 1).all())  # reaching the goal ends the chain
    assert float(successes.mean()) == pytest.approx(closed / (len(prior) + len(online)), abs=0.02)  # uniform over both


def test_labels_mark_only_the_transition_that_reached_the_goal():
    steps = [record(t, [0.1 * t], intervention=t >= 3, onset=t == 3) for t in range(5)]
    for outcome, rlif, dagger in (("success", [False] * 4 + [True], [False, True]), ("timeout", [False] * 4, [False, False]),
                                  ("failure", [False] * 5, [False, False])):
        labelled = label_episode(Episode(0, tuple(steps), 0.0, 1.0, outcome, "sim"))
        assert labelled.rlif.successes.tolist() == rlif, outcome
        assert labelled.dagger.successes.tolist() == dagger, outcome  # the operator's rows carry it too


def test_buffers_keep_the_goal_columns_through_a_checkpoint():
    labelled = label_episode(Episode(0, tuple(record(t, [t]) for t in range(4)), 0.0, 1.0, "success", "sim"))
    buffer = ReplayBuffer(1, 4, 10)
    buffer.add(labelled.rlif, np.zeros((len(labelled.rlif), 4), np.float32))
    again = ReplayBuffer(1, 4, 10)
    again.load_state(buffer.state())
    assert again.successes[:4].tolist() == [False, False, False, True]
    assert again.truncations[:4].tolist() == buffer.truncations[:4].tolist()


def weights_with(goal_critic: bool, version: int = 1) -> tuple[bytes, Policy]:
    torch.manual_seed(0)
    policy = Policy(PolicyShape("hgdagger", 3, 4, (8,), ensemble=2, goal_critic=goal_critic))
    meta = WeightsMeta(version, "hgdagger", "toy/v1", 3, TRANSLATION, 4, (8,), 2, 0, time.time(), goal_critic=goal_critic)
    return encode_policy(policy, meta), policy


def test_weights_with_a_goal_critic_round_trip_and_give_the_same_goal_probability():
    data, policy = weights_with(True)
    meta, decoded = decode_policy(data)
    assert meta.goal_critic and decoded.goal_critic is not None
    obs, actions = torch.randn(5, 3), torch.rand(5, 4) * 0.2
    torch.testing.assert_close(decoded.goal_probability(obs, actions), policy.goal_probability(obs, actions))
    assert ((decoded.goal_probability(obs, actions) >= 0) & (decoded.goal_probability(obs, actions) <= 1)).all()


def test_weights_without_a_goal_critic_stay_valid_and_give_no_risk():
    data, _ = weights_with(False)
    meta, decoded = decode_policy(data)
    assert not meta.goal_critic and decoded.goal_critic is None
    with pytest.raises(ValueError, match="no goal critic"):
        decoded.goal_probability(torch.zeros(1, 3), torch.zeros(1, 4))
    runner = PolicyRunner(PolicyConfig(observation_spec="toy/v1"))
    runner.install(runner.prepare(data))
    proposal, _ = runner.act(Observation((0.1, 0.2, 0.3), "toy/v1", 0.0), 0.0)
    assert proposal.risk is None and runner.risk((0.1, 0.2, 0.3), (0.0,) * 7) is None


def test_the_runner_proposes_with_the_risk_of_its_action_and_rates_the_operators():
    data, policy = weights_with(True)
    policy.requires_grad_(False)
    runner = PolicyRunner(PolicyConfig(observation_spec="toy/v1"))
    runner.install(runner.prepare(data))
    proposal, why = runner.act(Observation((0.1, 0.2, 0.3), "toy/v1", 0.0), 0.0)
    obs = torch.tensor([[0.1, 0.2, 0.3]])
    action, _ = policy(obs)
    assert proposal.risk == pytest.approx(1.0 - float(policy.goal_probability(obs, action)[0]), abs=1e-6), why
    human = (0.2, -0.1, 0.0, 0.0, 0.0, 0.0, 1.0)
    expected = 1.0 - float(policy.goal_probability(obs, torch.tensor([[0.2, -0.1, 0.0, 1.0]]))[0])
    assert runner.risk((0.1, 0.2, 0.3), human) == pytest.approx(expected, abs=1e-6)
    assert runner.risk((0.1, 0.2), human) is None  # does not fit the weights


def test_a_goal_critic_on_weights_that_cannot_carry_one_is_refused():
    _, policy = weights_with(True)
    forged = encode_policy(policy, WeightsMeta(1, "rlpd", "toy/v1", 3, TRANSLATION, 4, (8,), 1, 0, time.time(), goal_critic=True))
    with pytest.raises(WeightsError, match="goal_critic"):
        decode_policy(forged)
    with pytest.raises(ValueError, match="goal critic"):
        Policy(PolicyShape("rlpd", 3, 4, (8,), goal_critic=True))
