import numpy as np
import torch

from iil_robot.learners.hgdagger import HGDAggerConfig, HGDAggerLearner

torch.set_num_threads(1)


def test_behaviour_cloning_loss_falls_on_a_fixed_dataset():
    learner = HGDAggerLearner(3, 4, HGDAggerConfig(hidden=(32, 32), ensemble=3, batch_size=64))
    g = torch.Generator().manual_seed(0)
    obs = torch.randn(3, 64, 3, generator=g)
    actions = torch.tanh(obs @ torch.randn(3, 4, generator=g))
    first = float(learner.update(obs, actions)["bc_loss"])
    for _ in range(200):
        last = float(learner.update(obs, actions)["bc_loss"])
    assert last < 0.2 * first


def test_doubt_threshold_is_the_mean_doubt_over_the_last_quarter_of_onsets():
    learner = HGDAggerLearner(2, 4, HGDAggerConfig(hidden=(8,), ensemble=4, learn_doubt_threshold=True))
    onsets = np.random.default_rng(0).normal(size=(8, 2)).astype(np.float32)
    threshold = learner.fit_doubt_threshold(onsets)
    with torch.no_grad():
        expected = learner.policy(torch.from_numpy(onsets[-2:]))[1].mean()
    assert threshold == float(expected) > 0


def test_no_threshold_unless_asked():
    learner = HGDAggerLearner(2, 4, HGDAggerConfig(hidden=(8,)))
    assert learner.fit_doubt_threshold(np.zeros((3, 2), np.float32)) is None
