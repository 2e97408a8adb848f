"""The policy runner acts only on observations of the layout its weights were trained on."""
import time

from iil_robot.acting.policy import PolicyConfig, PolicyRunner
from iil_robot.data.records import Observation
from iil_robot.learners.networks import Policy, PolicyShape
from iil_robot.learners.weights import ACTION_SPEC, WeightsMeta, encode_policy

LAYOUT = ("ee.x", "ee.y", "ee.z")


def weights(version: int, fields=LAYOUT) -> bytes:
    meta = WeightsMeta(version, "rlpd", "toy/v1", 3, ACTION_SPEC, 4, (8,), 1, 0, time.time(), observation_fields=fields)
    return encode_policy(Policy(PolicyShape("rlpd", 3, 4, (8,))), meta)


def test_the_runner_acts_on_its_layout_and_holds_naming_the_difference_on_another():
    runner = PolicyRunner(PolicyConfig())
    assert runner.act(Observation((0.0, 0.0, 0.0), "toy/v1", 1.0, LAYOUT), now=1.0)[0].policy_version == 0
    runner.install(runner.prepare(weights(1)))
    assert runner.act(Observation((0.0, 0.0, 0.0), "toy/v1", 1.0, LAYOUT), now=1.0)[0].policy_version == 1
    proposal, why = runner.act(Observation((0.0, 0.0, 0.0), "toy/v1", 1.0, ("ee.x", "ee.y", "grip.width")), now=1.0)
    assert proposal is None and why == "the observation's layout differs from the policy's: it has missing ['ee.z']; " \
                                       "extra ['grip.width']"


def test_weights_for_another_layout_are_refused_once_the_observations_named_theirs():
    runner = PolicyRunner(PolicyConfig())
    runner.act(Observation((0.0, 0.0, 0.0), "toy/v1", 1.0, LAYOUT), now=1.0)
    try:
        runner.prepare(weights(1, fields=("a", "b", "c")))
    except ValueError as err:
        assert "another observation layout" in str(err)
    else:
        raise AssertionError("weights for another layout were accepted")
