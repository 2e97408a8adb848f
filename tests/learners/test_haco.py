import math

import numpy as np
import torch

from iil_robot.data.transitions import Transitions
from iil_robot.learners.buffers import ReplayBuffer
from iil_robot.learners.haco import HACOConfig, HACOLearner, conservative_loss, intervention_cost

from .test_pvp import hand_batch

torch.set_num_threads(1)
NAN = float("nan")


def test_cost_is_one_minus_cosine_of_novice_and_operator_action_at_the_onset_only():
    novice = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 1.0], [NAN, NAN], [0.3, 0.4]])
    human = torch.tensor([[-1.0, 0.0], [0.0, 2.0], [2.0, 2.0], [1.0, 0.0], [-0.3, -0.4]])
    onsets = torch.tensor([True, True, True, True, False])
    # opposite: 2; orthogonal: 1; same direction: 0; no proposal (a demo): 0; not an onset: 0
    torch.testing.assert_close(intervention_cost(novice, human, onsets), torch.tensor([2.0, 1.0, 0.0, 0.0, 0.0]))


def test_conservative_term_lowers_the_novice_value_below_the_operators():
    q_human = torch.tensor([[1.0, 2.0, 5.0]])
    q_novice = torch.tensor([[3.0, 0.5, 0.0]])
    mask = torch.tensor([False, True, True])
    assert math.isclose(conservative_loss(q_human, q_novice, mask).item(), ((0.5 - 2.0) + (0.0 - 5.0)) / 3, rel_tol=1e-6)


def test_critic_loss_on_a_hand_built_batch():
    learner = HACOLearner(3, 4, HACOConfig(hidden=(16, 16), batch_size=4, discount=0.9))
    with torch.no_grad():
        for critic in (learner.critic, learner.target_critic, learner.cost_critic, learner.target_cost_critic):
            critic.net.out.weight.zero_()
            critic.net.out.bias.fill_(0.5)
    torch.manual_seed(0)
    _, info = learner.critic_loss(hand_batch())
    # the onset row's proposal [-0.7]*4 opposes the operator's [0.5]*4: cost 2; the others 0
    assert math.isclose(info["cost"].item(), 2.0 / 4, rel_tol=1e-6)
    assert math.isclose(info["target_cost"].item(), (2.0 + 3 * 0.9 * 0.5) / 4, rel_tol=1e-5)
    assert math.isclose(info["cost_loss"].item(), ((0.5 - 2.45) ** 2 + 2 * (0.5 - 0.45) ** 2 + 0.5 ** 2) / 4, rel_tol=1e-5)
    assert info["conservative_loss"].item() == 0.0  # equal values: no ordering yet


def test_training_values_the_operator_above_the_novice_and_learns_the_takeover_cost():
    obs_dim, n = 2, 200
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(n, obs_dim)).astype(np.float32)
    human, novice = ReplayBuffer(obs_dim, 4, 500), ReplayBuffer(obs_dim, 4, 500)
    data = Transitions(obs, np.full((n, 4), 0.5, np.float32), np.zeros(n, np.float32), obs, np.ones(n, bool), np.zeros(n, bool),
                       np.ones(n, bool), np.full(n, 3, np.int8), onsets=np.ones(n, bool))
    human.add(data, data.actions, np.full((n, 4), -0.5, np.float32))
    robot = Transitions(obs, np.zeros((n, 4), np.float32), np.zeros(n, np.float32), obs, np.ones(n, bool), np.zeros(n, bool),
                        np.zeros(n, bool), np.ones(n, np.int8))
    novice.add(robot, robot.actions, robot.actions)
    learner = HACOLearner(obs_dim, 4, HACOConfig(hidden=(32, 32), batch_size=64, critic_lr=1e-3, actor_lr=1e-3))
    for _ in range(200):
        learner.train_step(human, novice, rng)
    with torch.no_grad():
        o = torch.from_numpy(obs[:50])
        q_h = learner.critic(o, torch.full((50, 4), 0.5)).mean()
        q_n = learner.critic(o, torch.full((50, 4), -0.5)).mean()
        cost_n = learner.cost_critic(o, torch.full((50, 4), -0.5)).mean()  # terminal onsets: Q^I = c = 2
    assert q_h > q_n, (q_h, q_n)
    assert 1.5 < cost_n < 2.5, cost_n
