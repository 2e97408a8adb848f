import numpy as np
import pytest

from iil_robot.data.transitions import Transitions
from iil_robot.learners.buffers import ActionBox, ReplayBuffer, sample_symmetric


def data(n, reward, obs_dim=2):
    return Transitions(np.zeros((n, obs_dim), np.float32), np.zeros((n, 4), np.float32), np.full(n, reward, np.float32),
                       np.zeros((n, obs_dim), np.float32), np.zeros(n, bool), np.zeros(n, bool), np.zeros(n, bool),
                       np.zeros(n, np.int8))


def test_ring_keeps_the_newest():
    buffer = ReplayBuffer(2, 4, capacity=5)
    buffer.add(data(3, 1.0), np.zeros((3, 4), np.float32))
    buffer.add(data(4, 2.0), np.zeros((4, 4), np.float32))
    assert len(buffer) == 5 and sorted(buffer.rewards) == [1.0, 2.0, 2.0, 2.0, 2.0]
    assert list(buffer.state()["rewards"]) == [1.0, 2.0, 2.0, 2.0, 2.0]


def test_symmetric_sampling_takes_half_from_each_buffer():
    prior, online = ReplayBuffer(2, 4, 100), ReplayBuffer(2, 4, 100)
    prior.add(data(10, -1.0), np.zeros((10, 4), np.float32))
    online.add(data(90, 0.0), np.zeros((90, 4), np.float32))
    batch = sample_symmetric(prior, online, 256, np.random.default_rng(0))
    assert (batch.rewards == -1).sum() == 128 and batch.rewards.shape == (256,)


@pytest.mark.parametrize("count, parts", [(256, 4), (64, 1), (30, 3), (7, 1)])
def test_every_utd_minibatch_is_half_prior_half_online(count, parts):
    # RLPD's UTD loop cuts one sampled batch into contiguous minibatches: each must stay symmetric,
    # or some critic updates (and the actor's) would see one buffer only
    prior, online = ReplayBuffer(2, 4, 100), ReplayBuffer(2, 4, 100)
    prior.add(data(10, -1.0), np.zeros((10, 4), np.float32))
    online.add(data(90, 0.0), np.zeros((90, 4), np.float32))
    batch = sample_symmetric(prior, online, count, np.random.default_rng(0))
    assert (batch.rewards == -1).sum() == count // 2
    for minibatch in batch.split(parts):
        n = len(minibatch.rewards)
        assert (minibatch.rewards == -1).sum() in (n // 2, n - n // 2), minibatch.rewards


def test_symmetric_sampling_uses_the_other_buffer_while_one_is_empty():
    prior, online = ReplayBuffer(2, 4, 100), ReplayBuffer(2, 4, 100)
    online.add(data(5, 0.5), np.zeros((5, 4), np.float32))
    assert (sample_symmetric(prior, online, 8, np.random.default_rng(0)).rewards == 0.5).all()


def test_action_box_maps_to_the_unit_box():
    unit = ActionBox().to_unit(np.array([[0.25, -0.25, 0.0, 1.0], [1.0, 0, 0, 0.5]], np.float32))
    np.testing.assert_allclose(unit, [[1, -1, 0, 1], [1, 0, 0, 0]])
    with pytest.raises(ValueError, match="4"):
        ActionBox().to_unit(np.zeros((1, 3), np.float32))
