"""The rules of the interactive-imitation family on hand-built data: IWR's batch balance, Sirius's
class weights, what each scheme learns from, the mixture head, and its weights message."""
import math

import numpy as np
import pytest
import torch

from iil_robot.data.transitions import StepClass, Transitions
from iil_robot.learners.buffers import ReplayBuffer
from iil_robot.learners.hgdagger import HGDAggerConfig, HGDAggerLearner, sample_rows
from iil_robot.learners.networks import MixtureEnsembleActor, Policy, PolicyShape
from iil_robot.learners.weights import WeightsMeta, decode_policy, encode_policy

torch.set_num_threads(1)
D, R, P, I = StepClass.DEMO, StepClass.ROBOT, StepClass.PRE_INTERVENTION, StepClass.INTERVENTION


def classes(**counts: int) -> np.ndarray:
    order = {"demo": D, "robot": R, "pre": P, "intervention": I}
    return np.concatenate([np.full(n, order[k], np.int8) for k, n in counts.items()])


def test_iwr_draws_exactly_half_of_every_minibatch_from_the_interventions():
    c = classes(demo=500, robot=480, pre=10, intervention=10)  # interventions are 1 % of the data
    idx = sample_rows(c, HGDAggerConfig(weighting="iwr", ensemble=3, batch_size=64), np.random.default_rng(0))
    assert idx.shape == (3, 64)
    assert ((c[idx] == I).sum(axis=1) == 32).all()


def test_iwr_with_another_fraction_and_without_interventions():
    c = classes(robot=100, intervention=5)
    idx = sample_rows(c, HGDAggerConfig(weighting="iwr", batch_size=40, iwr_intervention_fraction=0.25), np.random.default_rng(0))
    assert ((c[idx] == I).sum(axis=1) == 10).all()
    only_robot = classes(robot=50)
    assert (sample_rows(only_robot, HGDAggerConfig(weighting="iwr"), np.random.default_rng(0)) < 50).all()


def test_sirius_draws_each_class_in_proportion_to_weight_times_count():
    c = classes(demo=100, robot=300, pre=100, intervention=100)
    config = HGDAggerConfig(weighting="sirius", ensemble=2, batch_size=20_000, sirius_demo_weight=1.0,
                            sirius_robot_weight=1.0, sirius_pre_intervention_weight=0.5, sirius_intervention_weight=3.0)
    drawn = c[sample_rows(c, config, np.random.default_rng(0))]
    total = 100 * 1.0 + 300 * 1.0 + 100 * 0.5 + 100 * 3.0  # 750
    for step_class, expected in ((D, 100 / total), (R, 300 / total), (P, 50 / total), (I, 300 / total)):
        assert (drawn == step_class).mean() == pytest.approx(expected, abs=0.01)


def test_sirius_weight_zero_never_draws_that_class():
    c = classes(robot=50, pre=50, intervention=50)
    config = HGDAggerConfig(weighting="sirius", sirius_pre_intervention_weight=0.0)
    assert not (c[sample_rows(c, config, np.random.default_rng(0))] == P).any()


def test_none_is_uniform():
    c = classes(robot=10, intervention=990)
    drawn = c[sample_rows(c, HGDAggerConfig(weighting="none", batch_size=10_000), np.random.default_rng(0))]
    assert (drawn == R).mean() == pytest.approx(0.01, abs=0.005)


@pytest.mark.parametrize("bad", [dict(weighting="dagger"), dict(head="diffusion"), dict(iwr_intervention_fraction=1.0),
                                 dict(sirius_robot_weight=-1.0), dict(mixture_components=0)])
def test_bad_configs_are_refused(bad):
    with pytest.raises(ValueError):
        HGDAggerConfig(**bad)


def rows(n: int, step_class: StepClass, value: float) -> Transitions:
    obs = np.full((n, 1), value, np.float32)
    return Transitions(obs, np.full((n, 4), value, np.float32), np.zeros(n, np.float32), obs, np.zeros(n, bool),
                       np.zeros(n, bool), np.full(n, step_class in (D, I)), np.full(n, step_class, np.int8))


@pytest.mark.parametrize("weighting, expected", [("none", {0.1, 0.2}), ("iwr", {0.1, 0.2, 0.3, 0.4}),
                                                 ("sirius", {0.1, 0.2, 0.3, 0.4})])
def test_iwr_and_sirius_also_learn_from_the_robot_steps_hold_rows_never(weighting, expected):
    prior, online = ReplayBuffer(1, 4, 100), ReplayBuffer(1, 4, 100)
    for buffer, data in ((prior, rows(5, D, 0.1)), (prior, rows(5, I, 0.2)), (online, rows(5, R, 0.3)),
                         (online, rows(5, P, 0.4))):
        buffer.add(data, data.actions)
    hold = rows(3, R, 0.9)
    online.add(Transitions(**{**hold.__dict__, "classes": np.full(3, -1, np.int8)}), hold.actions)
    learner = HGDAggerLearner(1, 4, HGDAggerConfig(hidden=(4,), ensemble=2, weighting=weighting))
    observations, _, _, _ = learner.training_rows(prior, online)
    assert {round(float(v), 3) for v in observations[:, 0]} == expected


def test_mixture_log_prob_is_the_log_of_the_weighted_sum_of_gaussians():
    actor = MixtureEnsembleActor(1, 1, (4,), members=1, components=2)
    weights, means, stds = torch.tensor([0.25, 0.75]), torch.tensor([-0.5, 0.5]), torch.tensor([0.1, 0.2])
    actor.distribution = lambda obs: (weights.log().view(1, 1, 2), means.view(1, 1, 2, 1), stds.view(1, 1, 2, 1))
    a = 0.4
    density = sum(w * math.exp(-0.5 * ((a - m) / s) ** 2) / (s * math.sqrt(2 * math.pi))
                  for w, m, s in zip(weights.tolist(), means.tolist(), stds.tolist()))
    assert float(actor.log_prob(torch.zeros(1, 1), torch.tensor([[[a]]]))) == pytest.approx(math.log(density), rel=1e-5)


def test_mixture_acts_with_the_mean_of_the_most_likely_component_over_all_members():
    actor = MixtureEnsembleActor(1, 1, (4,), members=2, components=2)
    # member 0: 0.6 at -0.8, 0.4 at 0.1; member 1: 0.3 at 0.5, 0.7 at 0.9 -> pooled: 0.9 (weight 0.7) wins
    log_weights = torch.tensor([[0.6, 0.4], [0.3, 0.7]]).log().view(2, 1, 2)
    means = torch.tensor([[-0.8, 0.1], [0.5, 0.9]]).view(2, 1, 2, 1)
    actor.distribution = lambda obs: (log_weights, means, torch.full_like(means, 0.1))
    assert actor(torch.zeros(1, 1)).flatten().tolist() == pytest.approx([-0.8, 0.9])  # each member's mode
    assert actor.act(torch.zeros(1, 1)).flatten().tolist() == pytest.approx([0.9])  # never their average 0.05


def test_mixture_weights_round_trip_through_the_weights_message():
    learner = HGDAggerLearner(3, 4, HGDAggerConfig(hidden=(8,), ensemble=2, head="mixture", mixture_components=3))
    shape = learner.policy.shape
    meta = WeightsMeta(1, "hgdagger", "x/v1", 3, "translation_gripper/v1", 4, shape.hidden, 2, 0, 0.0,
                       head="mixture", components=3)
    decoded_meta, policy = decode_policy(encode_policy(learner.policy, meta))
    assert (decoded_meta.head, decoded_meta.components) == ("mixture", 3)
    obs = torch.randn(5, 3)
    with torch.no_grad():
        assert torch.equal(policy(obs)[0], learner.policy(obs)[0])
        assert policy(obs)[1].shape == (5,)


def test_l2_weights_decode_as_l2_and_a_mixture_message_with_l2_tensors_is_refused():
    policy = Policy(PolicyShape("hgdagger", 3, 4, (8,), ensemble=2))
    l2 = WeightsMeta(1, "hgdagger", "x/v1", 3, "translation_gripper/v1", 4, (8,), 2, 0, 0.0)
    assert decode_policy(encode_policy(policy, l2))[0].head == "l2"
    from iil_robot.learners.weights import WeightsError
    lying = WeightsMeta(1, "hgdagger", "x/v1", 3, "translation_gripper/v1", 4, (8,), 2, 0, 0.0, head="mixture", components=2)
    with pytest.raises(WeightsError, match="expected float32"):
        decode_policy(encode_policy(policy, lying))


def test_mixture_nll_falls_on_a_fixed_dataset():
    learner = HGDAggerLearner(2, 4, HGDAggerConfig(hidden=(32, 32), ensemble=2, head="mixture", mixture_components=2))
    g = torch.Generator().manual_seed(0)
    obs = torch.randn(2, 64, 2, generator=g)
    actions = torch.tanh(obs @ torch.randn(2, 4, generator=g)) * 0.9
    first = float(learner.update(obs, actions)["bc_loss"])
    for _ in range(200):
        last = float(learner.update(obs, actions)["bc_loss"])
    assert last < first - 1.0


def test_dagger_labels_are_not_reweighted():
    from iil_robot.data.labels import LabelConfig
    from iil_robot.learners.configs import LearnerConfigs
    from iil_robot.learners.trainer import Trainer, TrainerConfig
    with pytest.raises(ValueError, match="weighting 'iwr' does not fit method 'dagger'"):
        Trainer(TrainerConfig(method="dagger", device="cpu"), LearnerConfigs(hgdagger=HGDAggerConfig(weighting="iwr")))
    with pytest.raises(ValueError, match="label_every_step True does not fit method 'iwr'"):
        Trainer(TrainerConfig(method="iwr", device="cpu"), labels=LabelConfig(label_every_step=True))
