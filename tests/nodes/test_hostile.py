"""The hostile inputs of the benchmarks, the soak and the node tests are each refused by their decoder."""
import pytest

from iil_robot.acting.policy import PolicyConfig, PolicyRunner
from iil_robot.data.records import EpisodeEvent, Observation, Proposal, RecordError, StepRecord
from iil_robot.learners.weights import WeightsError
from iil_robot.nodes.peers import hostile


def test_every_hostile_weights_message_is_refused_and_a_valid_one_is_taken():
    runner = PolicyRunner(PolicyConfig(observation_spec="toy/v1"))
    runner.obs_dim = 3
    for kind, data in hostile.hostile_weights(3, "toy/v1"):
        with pytest.raises(WeightsError):
            runner.prepare(data)
            pytest.fail(f"{kind} was accepted")
    assert runner.prepare(hostile.encode_weights(1, 3, "toy/v1")).version == 1


@pytest.mark.parametrize("make, decoder", [(hostile.hostile_steps, StepRecord), (hostile.hostile_proposals, Proposal),
                                           (hostile.hostile_observations, Observation), (hostile.hostile_events, EpisodeEvent)])
def test_every_hostile_record_is_a_record_error(make, decoder):
    for kind, text in make():
        with pytest.raises(RecordError):
            decoder.decode(text)
            pytest.fail(f"{decoder.__name__} with {kind} decoded")
