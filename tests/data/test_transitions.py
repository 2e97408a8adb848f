import numpy as np
import pytest

from iil_robot.data.transitions import StepClass, Transitions


def make(n, obs_dim=3, act_dim=4):
    return Transitions(
        observations=np.zeros((n, obs_dim), np.float32), actions=np.zeros((n, act_dim), np.float32),
        rewards=np.zeros(n, np.float32), next_observations=np.zeros((n, obs_dim), np.float32),
        terminals=np.zeros(n, bool), truncations=np.zeros(n, bool), interventions=np.zeros(n, bool),
        classes=np.full(n, StepClass.ROBOT, np.int8),
    )


def test_concatenate_keeps_every_field():
    both = Transitions.concatenate([make(2), make(3), Transitions.empty(3, 4)])
    assert len(both) == 5 and both.classes.tolist() == [1] * 5


def test_mismatched_shapes_are_refused():
    good = make(2)
    with pytest.raises(ValueError, match="rewards has shape"):
        Transitions(**{**good.__dict__, "rewards": np.zeros(3, np.float32)})
    with pytest.raises(ValueError, match="next_observations"):
        Transitions(**{**good.__dict__, "next_observations": np.zeros((2, 5), np.float32)})
