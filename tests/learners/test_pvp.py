import math
from dataclasses import replace

import numpy as np
import torch

from iil_robot.data.episodes import Episode
from iil_robot.data.labels import label_episodes
from iil_robot.data.transitions import Transitions
from iil_robot.learners.buffers import ActionBox, Batch, ReplayBuffer
from iil_robot.learners.pvp import PVPConfig, PVPLearner, proxy_value_loss, td_targets

from .helpers import record

torch.set_num_threads(1)
TINY = dict(hidden=(16, 16), batch_size=4)
NAN = float("nan")


def hand_batch() -> Batch:
    """Row 0: a policy step; row 1: an intervention (operator action and the overridden proposal);
    row 2: a demo step (operator, no proposal); row 3: the policy's terminal step."""
    return Batch(
        observations=torch.zeros(4, 3), actions=torch.tensor([[0.1] * 4, [0.5] * 4, [-0.5] * 4, [0.2] * 4]),
        rewards=torch.tensor([-1.0, 0.0, 0.0, 0.0]),  # RLIF's label must not enter PVP's reward-free backup
        next_observations=torch.zeros(4, 3), masks=torch.tensor([1.0, 1.0, 1.0, 0.0]),
        novice_actions=torch.tensor([[0.1] * 4, [-0.7] * 4, [NAN] * 4, [0.2] * 4]),
        interventions=torch.tensor([False, True, True, False]), onsets=torch.tensor([False, True, False, False]),
    )


def constant_critic(learner: PVPLearner, value: float) -> None:
    """Make every critic (and target) output ``value`` for any input."""
    for critic in (learner.critic, learner.target_critic):
        with torch.no_grad():
            critic.net.out.weight.zero_()
            critic.net.out.bias.fill_(value)


def test_proxy_values_are_plus_one_for_the_operator_and_minus_one_for_the_novice():
    q_human = torch.tensor([[0.3, 0.2, 0.9]])
    q_novice = torch.tensor([[0.4, -0.5, 0.0]])
    interventions = torch.tensor([False, True, True])
    has_novice = torch.tensor([True, True, False])
    loss = proxy_value_loss(q_human, q_novice, interventions, has_novice, 1.0)
    # row 0: no intervention, nothing; row 1: (0.2-1)^2 + (-0.5+1)^2; row 2 (demo): (0.9-1)^2 only
    assert math.isclose(loss.item(), ((0.8 ** 2 + 0.5 ** 2) + 0.1 ** 2) / 3, rel_tol=1e-6)


def test_critic_loss_is_reward_free_td_plus_proxy_values_on_a_hand_built_batch():
    learner = PVPLearner(3, 4, PVPConfig(**TINY, discount=0.9))
    constant_critic(learner, 0.5)
    _, info = learner.critic_loss(hand_batch())
    # TD target gamma * mask * min Q' = 0.45 on rows 0-2, 0 on the terminal row; the reward -1 is ignored
    torch.testing.assert_close(info["target_q"], torch.tensor((0.45 * 3 + 0.0) / 4))
    assert math.isclose(info["td_loss"].item(), (3 * 0.05 ** 2 + 0.5 ** 2) / 4, rel_tol=1e-5)
    # intervention row: (0.5-1)^2 + (0.5+1)^2; demo row: (0.5-1)^2
    assert math.isclose(info["proxy_value_loss"].item(), (0.25 + 2.25 + 0.25) / 4, rel_tol=1e-5)
    torch.testing.assert_close(td_targets(torch.tensor([2.0, 2.0]), torch.tensor([1.0, 0.0]), 0.5), torch.tensor([1.0, 0.0]))


def test_td_only_on_steps_without_intervention_when_configured():
    learner = PVPLearner(3, 4, PVPConfig(**TINY, discount=0.9, td_on_all_steps=False))
    constant_critic(learner, 0.5)
    _, info = learner.critic_loss(hand_batch())
    assert math.isclose(info["td_loss"].item(), (0.05 ** 2 + 0.5 ** 2) / 4, rel_tol=1e-5)


def test_training_ranks_the_operator_action_above_the_novice_action():
    obs_dim = 2
    rng = np.random.default_rng(0)
    human, novice = ReplayBuffer(obs_dim, 4, 500), ReplayBuffer(obs_dim, 4, 500)
    n = 200
    obs = rng.normal(size=(n, obs_dim)).astype(np.float32)
    data = Transitions(obs, np.full((n, 4), 0.5, np.float32), np.zeros(n, np.float32), obs, np.zeros(n, bool), np.ones(n, bool),
                       np.ones(n, bool), np.full(n, 3, np.int8))
    human.add(data, data.actions, np.full((n, 4), -0.5, np.float32))
    policy_data = Transitions(obs, np.zeros((n, 4), np.float32), np.zeros(n, np.float32), obs, np.zeros(n, bool),
                              np.ones(n, bool), np.zeros(n, bool), np.ones(n, np.int8))
    novice.add(policy_data, policy_data.actions, policy_data.actions)
    learner = PVPLearner(obs_dim, 4, PVPConfig(hidden=(32, 32), batch_size=64, critic_lr=1e-3, actor_lr=1e-3))
    for _ in range(300):
        learner.train_step(human, novice, rng)
    with torch.no_grad():
        o = torch.from_numpy(obs[:50])
        q_h = learner.critic(o, torch.full((50, 4), 0.5)).mean()
        q_n = learner.critic(o, torch.full((50, 4), -0.5)).mean()
        acted = learner.actor(o).mean(0)
    assert q_h > 0.5 and q_n < -0.5, (q_h, q_n)
    assert (acted > 0).all(), acted  # the actor climbs towards the operator's action


def test_labels_carry_the_overridden_proposal_into_the_buffer():
    steps = [record(t, [float(t)], (0.1, 0, 0, 0, 0, 0, 0.0), intervention=t >= 2, onset=t == 2) for t in range(4)]
    steps = [replace(s, policy_action=(0.2, 0, 0, 0, 0, 0, 1.0) if t != 3 else None) for t, s in enumerate(steps)]
    labelled = label_episodes([Episode(0, tuple(steps), 0.0, 1.0, "success", "sim")])
    rlif = labelled.rlif
    np.testing.assert_allclose(rlif.novice_actions[:3], [[0.2, 0, 0, 1.0]] * 3)
    assert np.isnan(rlif.novice_actions[3]).all()
    assert rlif.onsets.tolist() == [False, False, True, False]
    buffer = ReplayBuffer(1, 4, 10)
    box = ActionBox()
    buffer.add(rlif, box.to_unit(rlif.actions), box.to_unit(rlif.novice_actions))
    batch = buffer.sample(20, np.random.default_rng(0))
    assert batch.novice_actions.shape == (20, 4) and batch.onsets.shape == (20,)
    np.testing.assert_allclose(buffer.novice_actions[0], [0.8, 0.0, 0.0, 1.0], atol=1e-6)
