import io
import pickle
from dataclasses import replace

import pytest
import torch

from iil_robot.data.actions import ACTION_SPACES, action_space
from iil_robot.learners.networks import Policy, PolicyShape
from iil_robot.learners.weights import Expected, WeightsError, WeightsMeta, decode_policy, encode_policy

TRANSLATION = ACTION_SPACES["translation"].spec  # the default action space's weights


def make(algorithm="rlpd", obs_dim=3, version=1, spec="toy/v1", ensemble=1):
    torch.manual_seed(version)
    policy = Policy(PolicyShape(algorithm, obs_dim, 4, (8, 8), ensemble))
    meta = WeightsMeta(version, algorithm, spec, obs_dim, TRANSLATION, 4, (8, 8), ensemble, 10, 0.0)
    return policy, meta


@pytest.mark.parametrize("algorithm, ensemble", [("rlpd", 1), ("hgdagger", 3)])
def test_weights_round_trip_through_safetensors(algorithm, ensemble):
    policy, meta = make(algorithm, ensemble=ensemble)
    got_meta, got = decode_policy(encode_policy(policy, meta), Expected("toy/v1", 3))
    assert got_meta == meta
    obs = torch.randn(5, 3)
    torch.testing.assert_close(got(obs)[0], policy(obs)[0])


def good_bytes():
    return encode_policy(*make())


def corrupt_header(b):
    return b[:8] + b"\xff" * 20 + b[28:]


def truncated(b):
    return b[: len(b) // 2]


def pickled(_b):
    policy, _ = make()
    return pickle.dumps(policy.state_dict())


def torch_saved(_b):
    buf = io.BytesIO()
    torch.save(make()[0].state_dict(), buf)
    return buf.getvalue()


def wrong_shape(_b):  # metadata says 3 observation values, tensors are for 5
    policy, meta = make(obs_dim=5)
    return encode_policy(policy, WeightsMeta(**{**meta.__dict__, "obs_dim": 3}))


def non_finite(_b):
    policy, meta = make()
    with torch.no_grad():
        policy.actor.head.weight[0, 0] = float("nan")
    return encode_policy(policy, meta)


def other_spec(_b):
    policy, meta = make(spec="other/v1")
    return encode_policy(policy, meta)


@pytest.mark.parametrize("tamper, message", [
    (corrupt_header, "not an iil_robot weights message"),
    (truncated, "truncated"),
    (pickled, "truncated|not an iil_robot|not a policy"),
    (torch_saved, "truncated|not an iil_robot|not a policy"),
    (wrong_shape, "expected float32"),
    (non_finite, "non-finite"),
    (other_spec, "observation spec"),
    (lambda b: b"", "truncated"),
])
def test_bad_weights_are_refused_with_a_reason(tamper, message):
    with pytest.raises(WeightsError, match=message):
        decode_policy(tamper(good_bytes()), Expected("toy/v1", 3))


def test_an_algorithm_the_receiver_does_not_run_is_refused():
    with pytest.raises(WeightsError, match="algorithm"):
        decode_policy(good_bytes(), Expected(algorithms=("hgdagger",)))


@pytest.mark.parametrize("arm, refused", [
    (("ee.x", "ee.y", "ee.z"), ""),
    ((), ""),  # observations without a layout: only spec and size are checked
    (("ee.x", "ee.y", "object.x"), r"this arm's observations have missing \['ee.z'\]; extra \['object.x'\]"),
    (("ee.y", "ee.x", "ee.z"), "another order"),
])
def test_weights_for_another_observation_layout_are_refused_naming_the_difference(arm, refused):
    policy, meta = make()
    data = encode_policy(policy, replace(meta, observation_fields=("ee.x", "ee.y", "ee.z")))
    expected = Expected("toy/v1", 3, observation_fields=arm)
    if refused:
        with pytest.raises(WeightsError, match=refused):
            decode_policy(data, expected)
    else:
        assert decode_policy(data, expected)[0].observation_fields == ("ee.x", "ee.y", "ee.z")


def test_a_layout_of_another_length_than_the_observation_is_refused():
    policy, meta = make()
    with pytest.raises(WeightsError, match="names 2 observation fields for obs_dim 3"):
        decode_policy(encode_policy(policy, replace(meta, observation_fields=("a", "b"))))


def space_weights(name: str, **changes) -> bytes:
    space = action_space(name)
    torch.manual_seed(0)
    policy = Policy(PolicyShape("rlpd", 3, space.size, (8,)))
    meta = WeightsMeta(1, "rlpd", "toy/v1", 3, space.spec, space.size, (8,), 1, 0, 0.0, action_fields=space.fields)
    return encode_policy(policy, replace(meta, **changes))


@pytest.mark.parametrize("name", list(ACTION_SPACES))
def test_each_action_space_round_trips_in_the_metadata(name):
    meta, policy = decode_policy(space_weights(name), Expected("toy/v1", 3, action_space=name))
    assert (meta.action_space.name, meta.act_dim, meta.action_fields) == (name, ACTION_SPACES[name].size,
                                                                          ACTION_SPACES[name].fields)
    assert policy(torch.zeros(2, 3))[0].shape == (2, ACTION_SPACES[name].size)


@pytest.mark.parametrize("weights_space, node_space, difference", [
    ("6dof", "translation", r"the weights have extra \['wx', 'wy', 'wz'\]"),
    ("translation", "translation_yaw", r"the weights have missing \['wz'\]"),
    ("translation_yaw", "6dof", r"the weights have missing \['wx', 'wy'\]"),
])
def test_weights_of_another_action_space_are_refused_naming_the_difference(weights_space, node_space, difference):
    with pytest.raises(WeightsError, match=f"act in action space '{weights_space}'.*{difference}; set action.space"):
        decode_policy(space_weights(weights_space), Expected("toy/v1", 3, action_space=node_space))


def test_weights_from_before_action_spaces_read_as_translation():
    meta, _ = decode_policy(good_bytes(), Expected("toy/v1", 3))  # no action_fields, as older learners wrote
    assert meta.action_fields == () and meta.action_space.name == "translation"
    with pytest.raises(WeightsError, match="act in action space 'translation'"):
        decode_policy(good_bytes(), Expected("toy/v1", 3, action_space="6dof"))


@pytest.mark.parametrize("changes, message", [
    ({"action_spec": "twist/v9"}, "action spec 'twist/v9' is unknown"),
    ({"act_dim": 4}, "act_dim=4 does not fit action spec 'twist_gripper/v1'"),
    ({"action_fields": ("vx", "vy", "vz", "wz", "wy", "wx", "gripper")}, "action_fields .* do not match"),
])
def test_metadata_that_contradicts_its_action_spec_is_refused(changes, message):
    with pytest.raises(WeightsError, match=message):
        decode_policy(space_weights("6dof", **changes))


def test_tool_frame_weights_carry_the_frame_in_their_spec_and_base_weights_read_as_base():
    meta, _ = decode_policy(space_weights("6dof", action_spec="tool_twist_gripper/v1"),
                            Expected("toy/v1", 3, action_space="6dof", action_frame="tool"))
    assert (meta.action_frame, meta.action_space.name) == ("tool", "6dof")
    assert decode_policy(good_bytes(), Expected("toy/v1", 3))[0].action_frame == "base"  # written before frames


@pytest.mark.parametrize("weights_frame, node_frame", [("tool", "base"), ("base", "tool")])
def test_weights_of_the_other_frame_are_refused_naming_both(weights_frame, node_frame):
    spec = ("tool_" if weights_frame == "tool" else "") + "twist_gripper/v1"
    with pytest.raises(WeightsError, match=f"weights act in the {weights_frame} frame \\(action spec '{spec}'\\), this policy "
                                           f"node in the {node_frame} frame: set action.frame to '{weights_frame}'"):
        decode_policy(space_weights("6dof", action_spec=spec),
                      Expected("toy/v1", 3, action_space="6dof", action_frame=node_frame))
