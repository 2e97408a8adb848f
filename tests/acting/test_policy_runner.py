"""The policy runner acts only on observations of the layout its weights were trained on."""
import time
from dataclasses import replace

import pytest
import torch

from iil_robot.acting.policy import PolicyConfig, PolicyRunner, action_note
from iil_robot.data.actions import ACTION_SPACES, ActionConfig
from iil_robot.data.records import Observation
from iil_robot.learners.networks import Policy, PolicyShape
from iil_robot.learners.weights import WeightsError, WeightsMeta, encode_policy

TRANSLATION = ACTION_SPACES["translation"].spec  # the default action space's weights


LAYOUT = ("ee.x", "ee.y", "ee.z")


def weights(version: int, fields=LAYOUT) -> bytes:
    meta = WeightsMeta(version, "rlpd", "toy/v1", 3, TRANSLATION, 4, (8,), 1, 0, time.time(), observation_fields=fields)
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


@pytest.mark.parametrize("name", list(ACTION_SPACES))
def test_the_runner_expands_each_action_space_into_the_7_value_proposal(name):
    space = ACTION_SPACES[name]
    policy = Policy(PolicyShape("rlpd", 3, space.size, (8,)))
    with torch.no_grad():  # a constant action: the head's bias alone, mapped from [-1, 1] onto the box
        policy.actor.head.weight.zero_()
        policy.actor.head.bias.zero_()
        policy.actor.head.bias[: space.size] = torch.atanh(torch.linspace(0.2, 0.8, space.size))
    low, high = ActionConfig(name).bounds()
    policy.scale_to(low, high)
    meta = WeightsMeta(1, "rlpd", "toy/v1", 3, space.spec, space.size, (8,), 1, 0, time.time(), action_fields=space.fields)
    runner = PolicyRunner(PolicyConfig(), ActionConfig(name))
    runner.install(runner.prepare(encode_policy(policy, meta)))
    proposal, why = runner.act(Observation((0.0, 0.0, 0.0), "toy/v1", 1.0, LAYOUT), now=1.0)
    assert why == "" and len(proposal.action) == 7
    learned = policy(torch.zeros(1, 3))[0][0].tolist()
    for index in range(7):
        value = learned[space.indices.index(index)] if index in space.indices else 0.0
        assert proposal.action[index] == pytest.approx(value, abs=1e-6), f"{space.fields} -> record index {index}"
    assert sum(v != 0.0 for v in proposal.action) == space.size


def test_a_runner_of_another_action_space_refuses_the_weights_and_keeps_acting():
    runner = PolicyRunner(PolicyConfig(), ActionConfig("6dof"))
    with pytest.raises(WeightsError, match=r"the weights have missing \['wx', 'wy', 'wz'\]"):
        runner.prepare(weights(1))
    assert runner.act(Observation((0.0, 0.0, 0.0), "toy/v1", 1.0, LAYOUT), now=1.0)[0].action == (0.0,) * 7


def test_weights_without_action_fields_get_a_note_that_they_read_as_translation():
    meta = WeightsMeta(1, "rlpd", "toy/v1", 3, TRANSLATION, 4, (8,), 1, 0, 0.0)
    assert "read as action space 'translation' (vx, vy, vz, gripper)" in action_note(meta)
    assert action_note(replace(meta, action_fields=("vx", "vy", "vz", "gripper"))) == ""


ORIENTED = ("ee.x", "ee.y", "ee.z", "ee_orientation.qx", "ee_orientation.qy", "ee_orientation.qz", "ee_orientation.qw")
YAW_90 = (0.0, 0.0, 2 ** -0.5, 2 ** -0.5)
STILL = (0.0,) * 6 + (0.5,)


def constant_weights(action, frame="tool", fields=ORIENTED) -> bytes:
    """6dof weights whose action is ``action`` whatever the observation (in ``frame``)."""
    space, config = ACTION_SPACES["6dof"], ActionConfig("6dof", frame=frame)
    policy = Policy(PolicyShape("rlpd", len(fields), space.size, (8,)))
    low, high = config.bounds()
    with torch.no_grad():  # the head's bias alone, mapped from [-1, 1] onto the box
        policy.actor.head.weight.zero_()
        policy.actor.head.bias.zero_()
        policy.actor.head.bias[: space.size] = torch.atanh(torch.tensor(
            [2 * (a - lo) / (hi - lo) - 1 for a, lo, hi in zip(action, low, high)]))
    policy.scale_to(low, high)
    meta = WeightsMeta(1, "rlpd", "toy/v1", len(fields), config.spec, space.size, (8,), 1, 0, time.time(),
                       observation_fields=fields, action_fields=space.fields)
    return encode_policy(policy, meta)


def test_a_tool_frame_runner_rotates_its_action_into_the_command_frame_by_the_observed_orientation():
    runner = PolicyRunner(PolicyConfig(), ActionConfig("6dof", frame="tool"))
    runner.install(runner.prepare(constant_weights((0.1, 0.0, 0.0, 0.0, 0.0, 0.5, 0.7))))
    proposal, why = runner.act(Observation((0.0, 0.0, 0.0, *YAW_90), "toy/v1", 1.0, ORIENTED), now=1.0)
    assert why == ""
    assert proposal.action == pytest.approx((0.0, 0.1, 0.0, 0.0, 0.0, 0.5, 0.7), abs=1e-5)  # tool x is the command y
    upright, _ = runner.act(Observation((0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0), "toy/v1", 1.0, ORIENTED), now=1.0)
    assert upright.action == pytest.approx((0.1, 0.0, 0.0, 0.0, 0.0, 0.5, 0.7), abs=1e-5)


def test_a_tool_frame_runner_holds_on_observations_without_the_orientation_naming_the_parameters():
    runner = PolicyRunner(PolicyConfig(), ActionConfig(frame="tool"))
    proposal, why = runner.act(Observation((0.0, 0.0, 0.0), "toy/v1", 1.0, LAYOUT), now=1.0)
    assert proposal is None and "has no ['ee_orientation.qx'" in why and "action.orientation_field" in why
    proposal, why = runner.act(Observation((0.0,) * 7, "toy/v1", 1.0, ORIENTED), now=1.0)
    assert proposal is None and why.endswith("ee_orientation [0.0, 0.0, 0.0, 0.0] is no rotation")


def test_a_runner_refuses_weights_of_the_other_frame():
    with pytest.raises(WeightsError, match="weights act in the tool frame .* this policy node in the base frame"):
        PolicyRunner(PolicyConfig(), ActionConfig("6dof")).prepare(constant_weights(STILL))
    with pytest.raises(WeightsError, match="weights act in the base frame .* in the tool frame"):
        PolicyRunner(PolicyConfig(), ActionConfig("6dof", frame="tool")).prepare(constant_weights(STILL, frame="base"))


def test_weights_that_do_not_fit_the_observations_received_are_refused_at_install_and_the_next_fitting_ones_act():
    """Weights checked before any observation arrived could not be checked against its size: at install they are."""
    runner = PolicyRunner(PolicyConfig())
    meta = WeightsMeta(1_000_000, "rlpd", "toy/v1", 4, TRANSLATION, 4, (8,), 1, 0, time.time())
    wrong = runner.prepare(encode_policy(Policy(PolicyShape("rlpd", 4, 4, (8,))), meta))  # no observation: size unknown
    runner.act(Observation((0.1, 0.2, 0.3), "toy/v1", 1.0, LAYOUT), 1.0)  # now it is: 3 values
    with pytest.raises(WeightsError, match=r"observation spec 'toy/v1' \(4 values\), this arm publishes 'toy/v1' \(3"):
        runner.install(wrong)
    runner.install(runner.prepare(weights(1)))  # the version floor did not move: version 1 is still newer
    proposal, _ = runner.act(Observation((0.1, 0.2, 0.3), "toy/v1", 1.0, LAYOUT), 1.0)
    assert proposal.policy_version == 1
