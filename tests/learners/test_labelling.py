import numpy as np

from iil_robot.learners.labelling import LiveLabeller, rlif_transitions
from iil_robot.transitions import StepClass

from .helpers import record


def test_reward_is_minus_one_on_the_transition_into_an_onset():
    records = [record(0, [0.0]), record(1, [1.0]), record(2, [2.0], intervention=True, onset=True), record(3, [3.0], intervention=True)]
    t = rlif_transitions(records)
    assert list(t.rewards) == [0.0, -1.0, 0.0]
    assert list(t.interventions) == [False, False, True]
    assert list(t.classes) == [StepClass.PRE_INTERVENTION, StepClass.PRE_INTERVENTION, StepClass.INTERVENTION]
    np.testing.assert_array_equal(t.next_observations[:, 0], [1.0, 2.0, 3.0])


def test_no_transition_links_a_tick_restart_a_gap_or_a_missing_observation():
    records = [record(5, [0.0]), record(6, [1.0]), record(0, [2.0]), record(1, [3.0]), record(3, [4.0]), record(4, None), record(5, [5.0])]
    t = rlif_transitions(records)
    np.testing.assert_array_equal(t.observations[:, 0], [0.0, 2.0])
    assert t.truncations.all()


def test_live_labeller_links_batches_and_stops_at_boundaries():
    live = LiveLabeller()
    assert live.add([record(0, [0.0])]) is None
    assert len(live.add([record(1, [1.0]), record(2, [2.0])])) == 2
    live.boundary()
    assert live.add([record(3, [3.0])]) is None
