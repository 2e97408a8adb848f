"""The policy node in its own process: fallback, weights swaps, refusals, stale observations."""
import time

import torch
from std_msgs.msg import Bool, String, UInt8MultiArray

from iil_robot.cli.graph import NodeSpec
from iil_robot.data.actions import ACTION_SPACES
from iil_robot.data.records import Observation, Proposal
from iil_robot.learners.networks import Policy, PolicyShape
from iil_robot.learners.weights import WeightsMeta, encode_policy
from iil_robot.nodes.common import LATCHED_QOS, RECORD_QOS, SENSOR_QOS
from iil_robot.nodes.learner import weights_message

from .conftest import assert_stops_with

TRANSLATION = ACTION_SPACES["translation"].spec  # the default action space's weights


def weights(version, obs_dim=3, spec="toy/v1"):
    torch.manual_seed(version)
    policy = Policy(PolicyShape("rlpd", obs_dim, 4, (8,)))
    with torch.no_grad():
        policy.actor.head.bias.fill_(0.5)  # a clearly non-zero action
    return encode_policy(policy, WeightsMeta(version, "rlpd", spec, obs_dim, TRANSLATION, 4, (8,), 1, 0, time.time()))


def test_policy_node_acts_swaps_refuses_and_goes_quiet_on_stale_observations(graph, probe):
    graph.start(NodeSpec("policy", "iil_robot.nodes.policy_node", parameters={"rate": 50.0}))
    proposals = probe.collect(String, "policy/proposal", RECORD_QOS)
    obs_pub = probe.publisher(String, "observation", SENSOR_QOS)
    weights_pub = probe.publisher(UInt8MultiArray, "policy/weights", LATCHED_QOS)
    feeding = {"on": True}

    def feed():
        if feeding["on"]:
            obs_pub.publish(String(data=Observation((0.1, 0.2, 0.3), "toy/v1", time.time()).encode()))

    def latest():
        return Proposal.decode(proposals.messages[-1].data) if proposals.messages else None

    probe.wait_for(lambda: len(proposals) > 3, 30.0, "fallback proposals", every=feed)
    assert latest().policy_version == 0 and latest().action[:6] == (0.0,) * 6

    weights_pub.publish(weights_message(weights(1)))
    probe.wait_for(lambda: latest().policy_version == 1, 10.0, "version 1 acting", every=feed)
    assert abs(latest().action[0]) > 0.01 and latest().action[3:6] == (0.0, 0.0, 0.0) and 0 <= latest().action[6] <= 1

    good = weights(2)
    bad = (good[:-100], good[:8] + b"\x00" * 40 + good[48:], weights(3, obs_dim=5), weights(4, spec="other/v1"),
           b"\x80\x04pickle")
    for i, data in enumerate(bad):  # one at a time: the topic is latched with depth 1
        weights_pub.publish(weights_message(data))
        probe.wait_for(lambda: graph.tail("policy", 200).count("refused weights") > i, 10.0, f"refusal {i}", every=feed)  # noqa: B023
    count = len(proposals)
    probe.wait_for(lambda: len(proposals) > count + 5, 5.0, "proposals after refusals", every=feed)
    assert latest().policy_version == 1

    feeding["on"] = False
    probe.spin_for(0.5)
    count = len(proposals)
    probe.spin_for(0.5)
    assert len(proposals) == count  # stale observation: no proposal
    probe.wait_for(lambda: "observation is stale" in graph.tail("policy", 50), 5.0, "the stale warning (throttled)")
    assert len(proposals) == count


def test_policy_node_stops_on_a_bad_fallback(graph):
    assert_stops_with(graph, NodeSpec("policy", "iil_robot.nodes.policy_node", parameters={"fallback": "weights"}),
                      "fallback_weights")


def ensemble_weights(version, obs_dim=3, spec="toy/v1"):
    """HG-DAgger weights whose members disagree strongly: a high doubt on every observation."""
    torch.manual_seed(version)
    policy = Policy(PolicyShape("hgdagger", obs_dim, 4, (8,), ensemble=5))
    with torch.no_grad():
        for p in policy.parameters():
            p.mul_(20.0)
    return encode_policy(policy, WeightsMeta(version, "hgdagger", spec, obs_dim, TRANSLATION, 4, (8,), 5, 0, time.time()))


def test_an_uncertain_policy_raises_the_help_request(graph, probe):
    graph.start(NodeSpec("policy", "iil_robot.nodes.policy_node", parameters={
        "rate": 50.0, "help.enabled": True, "help.novelty_threshold": 1e-4, "help.publish_period": 0.2}))
    requests = probe.collect(Bool, "help/request", LATCHED_QOS)
    proposals = probe.collect(String, "policy/proposal", RECORD_QOS)
    obs_pub = probe.publisher(String, "observation", SENSOR_QOS)
    weights_pub = probe.publisher(UInt8MultiArray, "policy/weights", LATCHED_QOS)

    def feed():
        obs_pub.publish(String(data=Observation((0.1, 0.2, 0.3), "toy/v1", time.time()).encode()))

    # each topic is matched on its own: wait for the latched request as well as the proposals
    probe.wait_for(lambda: len(proposals) > 3 and requests.messages, 30.0, "fallback proposals and help/request", every=feed)
    assert not any(m.data for m in requests.messages)  # the hold fallback has no doubt: no request
    weights_pub.publish(weights_message(ensemble_weights(1)))
    probe.wait_for(lambda: any(m.data for m in requests.messages), 15.0, "help/request true", every=feed)
    # the request and the proposal behind it travel on two topics: either may arrive first
    probe.wait_for(lambda: Proposal.decode(proposals.messages[-1].data).uncertainty is not None, 5.0, "a proposal with doubt",
                   every=feed)
    assert Proposal.decode(proposals.messages[-1].data).uncertainty > 1e-4
    assert "asking the operator for help" in graph.tail("policy", 200)


def test_weights_with_a_goal_critic_propose_with_a_risk_and_ask_on_it(graph, probe):
    graph.start(NodeSpec("policy", "iil_robot.nodes.policy_node", parameters={
        "rate": 50.0, "help.enabled": True, "help.use_novelty": False, "help.risk_threshold": 1e-6, "help.publish_period": 0.2}))
    requests = probe.collect(Bool, "help/request", LATCHED_QOS)
    proposals = probe.collect(String, "policy/proposal", RECORD_QOS)
    obs_pub = probe.publisher(String, "observation", SENSOR_QOS)
    weights_pub = probe.publisher(UInt8MultiArray, "policy/weights", LATCHED_QOS)
    torch.manual_seed(0)
    policy = Policy(PolicyShape("hgdagger", 3, 4, (8,), ensemble=2, goal_critic=True))
    meta = WeightsMeta(1, "hgdagger", "toy/v1", 3, TRANSLATION, 4, (8,), 2, 0, time.time(), goal_critic=True)

    def feed():
        obs_pub.publish(String(data=Observation((0.1, 0.2, 0.3), "toy/v1", time.time()).encode()))

    probe.wait_for(lambda: len(proposals) > 3, 30.0, "fallback proposals", every=feed)
    weights_pub.publish(weights_message(encode_policy(policy, meta)))
    probe.wait_for(lambda: Proposal.decode(proposals.messages[-1].data).policy_version == 1, 15.0, "version 1 acting", every=feed)
    risk = Proposal.decode(proposals.messages[-1].data).risk
    assert risk is not None and 0.0 < risk < 1.0  # 1 - Q_G(s, pi(s)) of a fresh critic: about 0.5
    probe.wait_for(lambda: any(m.data for m in requests.messages), 15.0, "help/request true on risk", every=feed)
    assert "asking the operator for help (risk" in graph.tail("policy", 200)


POLICY_TIMEOUT = 0.25
"""The mux's ``topics.policy.timeout`` (config/mux.yaml): a longer gap between proposals makes it hold the arm. The
policy ticks every 50 ms and validates weights only after a tick has published, so a gap near 50 ms is expected; the
bound leaves four periods for a loaded 2-core machine, while building an oversized network before refusing it (the
bug this guards) stopped the ticks for 0.6-2.4 s."""


def test_hostile_weights_are_refused_and_logged_without_delaying_a_tick(graph, probe):
    from iil_robot.nodes.peers.hostile import hostile_weights

    process = graph.start(NodeSpec("policy", "iil_robot.nodes.policy_node", parameters={"rate": 20.0}))
    proposals = probe.collect(String, "policy/proposal", RECORD_QOS)
    obs_pub = probe.publisher(String, "observation", SENSOR_QOS)
    weights_pub = probe.publisher(UInt8MultiArray, "policy/weights", LATCHED_QOS)

    def feed():
        obs_pub.publish(String(data=Observation((0.1, 0.2, 0.3), "toy/v1", time.time()).encode()))

    weights_pub.publish(weights_message(weights(1)))
    probe.wait_for(lambda: proposals.messages and Proposal.decode(proposals.messages[-1].data).policy_version == 1, 30.0,
                   "version 1 acting", every=feed)
    start = len(proposals)
    hostile = hostile_weights(3, "toy/v1")
    for i, (kind, data) in enumerate(hostile):  # about five a second, each after the previous one's refusal
        weights_pub.publish(weights_message(data))
        probe.wait_for(lambda: process.log_path.read_text().count("refused weights") > i, 10.0, f"the refusal of {kind}",  # noqa: B023
                       every=feed)
        probe.wait_for(lambda: len(proposals) > start + 4 * (i + 1), 10.0, "four more ticks", every=feed)  # noqa: B023
    stamps = [Proposal.decode(m.data).stamp for m in proposals.messages[start:]]
    gap = max(b - a for a, b in zip(stamps, stamps[1:]))
    assert gap < POLICY_TIMEOUT, f"the policy's ticks stopped for {gap:.3f} s while hostile weights arrived"
    assert {Proposal.decode(m.data).policy_version for m in proposals.messages[start:]} == {1}
    log = process.log_path.read_text()
    assert log.count("refused weights, version 1 keeps acting") == len(hostile) and "[FATAL]" not in log, log[-3000:]
    for phrase in ("over this node's maximum", "but the message holds", "non-finite", "corrupt", "do not match",
                   "normalisation is invalid", "observation values", "observation spec", "not valid JSON",
                   "nested too deeply", "header of", "truncated (no safetensors header)"):
        assert phrase in log, phrase


def test_a_tool_frame_policy_node_proposes_its_action_rotated_into_the_command_frame(graph, probe):
    from tests.acting.test_policy_runner import ORIENTED, YAW_90, constant_weights

    graph.start(NodeSpec("policy", "iil_robot.nodes.policy_node",
                         parameters={"rate": 50.0, "action.space": "6dof", "action.frame": "tool"}))
    proposals = probe.collect(String, "policy/proposal", RECORD_QOS)
    obs_pub = probe.publisher(String, "observation", SENSOR_QOS)
    weights_pub = probe.publisher(UInt8MultiArray, "policy/weights", LATCHED_QOS)
    observation = {"values": (0.0, 0.0, 0.0), "fields": ("ee.x", "ee.y", "ee.z")}  # no orientation yet

    def feed():
        obs_pub.publish(String(data=Observation(observation["values"], "toy/v1", time.time(), observation["fields"]).encode()))

    probe.wait_for(lambda: "action.orientation_field" in graph.tail("policy", 50), 30.0, "the missing orientation named",
                   every=feed)
    assert len(proposals) == 0  # held: no proposal without the end effector's orientation
    observation.update(values=(0.0, 0.0, 0.0, *YAW_90), fields=ORIENTED)
    weights_pub.publish(weights_message(constant_weights((0.1, 0.0, 0.0, 0.0, 0.0, 0.5, 0.7))))
    probe.wait_for(lambda: proposals.messages and Proposal.decode(proposals.messages[-1].data).policy_version == 1, 20.0,
                   "tool-frame weights acting", every=feed)
    action = Proposal.decode(proposals.messages[-1].data).action
    assert max(abs(a - b) for a, b in zip(action, (0.0, 0.1, 0.0, 0.0, 0.0, 0.5, 0.7))) < 1e-5, action  # tool x: command y
    assert "in the end effector's frame (its orientation: observation field ee_orientation)" in graph.tail("policy", 200)


def test_weights_that_arrive_before_any_observation_wait_for_one_and_misfits_never_lock_out_the_learner(graph, probe):
    """The 30-minute soak caught this: hostile weights for 4 observation values, version 1,000,000, arrived before the
    policy's first observation, were installed unchecked, could never act, and as the newest version locked out every
    weights message of the real learner."""
    process = graph.start(NodeSpec("policy", "iil_robot.nodes.policy_node", parameters={"rate": 20.0}))
    proposals = probe.collect(String, "policy/proposal", RECORD_QOS)
    obs_pub = probe.publisher(String, "observation", SENSOR_QOS)
    weights_pub = probe.publisher(UInt8MultiArray, "policy/weights", LATCHED_QOS)
    probe.wait_for(lambda: weights_pub.get_subscription_count() > 0, 30.0, "the policy's weights subscription")
    weights_pub.publish(weights_message(weights(1_000_000, obs_dim=4)))
    probe.wait_for(lambda: "no proposal: no observation yet" in process.log_path.read_text(), 30.0, "a tick without observation")
    probe.spin_for(0.5)  # the weights have been checked meanwhile, as far as they can be without an observation

    def feed():
        obs_pub.publish(String(data=Observation((0.1, 0.2, 0.3), "toy/v1", time.time()).encode()))

    probe.wait_for(lambda: "(4 values), this arm publishes 'toy/v1' (3 values)" in process.log_path.read_text(), 10.0,
                   "the misfit refused once an observation told the size", every=feed)
    weights_pub.publish(weights_message(weights(1)))
    probe.wait_for(lambda: proposals.messages and Proposal.decode(proposals.messages[-1].data).policy_version == 1, 10.0,
                   "the learner's version 1 acting", every=feed)
