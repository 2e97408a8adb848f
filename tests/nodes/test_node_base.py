"""IilNode: publishers and subscriptions without rclpy's QoS event handlers, and the graph check that replaces them."""
from __future__ import annotations

import pytest
import rclpy
from rclpy.event_handler import EventHandler
from std_msgs.msg import Float64, String

from iil_robot.nodes.common import COMMAND_QOS, RECORD_QOS, SENSOR_QOS, IilNode


@pytest.fixture
def own_context(domain_id):
    """A second participant in the probe's domain: DDS refuses one topic with two types within one participant."""
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=domain_id)
    yield context
    rclpy.try_shutdown(context=context)


def test_endpoints_add_no_event_handlers_to_the_wait_set(probe, own_context):
    node = IilNode("quiet", context=own_context)
    node.create_subscription(String, "step", lambda msg: None, RECORD_QOS)
    node.create_publisher(String, "proposal", RECORD_QOS)
    assert not [w for w in node.waitables if isinstance(w, EventHandler)]
    # a plain rclpy node, for comparison: two handlers per publisher and subscription
    probe.node.create_subscription(String, "step", lambda msg: None, RECORD_QOS)
    assert len([w for w in probe.node.waitables if isinstance(w, EventHandler)]) >= 2
    node.destroy_node()


def test_the_graph_check_names_a_peer_with_incompatible_qos_or_type_once(probe, own_context):
    node = IilNode("recorder_like", context=own_context)
    node.create_subscription(String, "step", lambda msg: None, RECORD_QOS)  # reliable
    node.create_publisher(String, "arm/cmd_text", COMMAND_QOS)
    probe.node.create_publisher(String, "step", SENSOR_QOS)  # best effort: a reliable subscription cannot match it
    probe.node.create_subscription(Float64, "arm/cmd_text", lambda msg: None, COMMAND_QOS)  # the wrong type
    # and peers that match, on both sides: no warning (discovery reports default QoS policies by their value)
    probe.node.create_publisher(String, "step", RECORD_QOS)
    node.create_publisher(String, "proposal", RECORD_QOS)
    probe.node.create_subscription(String, "proposal", lambda msg: None, RECORD_QOS)

    def all_named() -> bool:
        publishers = node.get_publishers_info_by_topic("step")
        subscriptions = node.get_subscriptions_info_by_topic("arm/cmd_text") + node.get_subscriptions_info_by_topic("proposal")
        return len(publishers) == 2 and len(subscriptions) == 2 and all(
            e.node_name == "test_probe" for e in publishers + subscriptions)

    probe.wait_for(all_named, 10.0, "the probe's endpoints, named, in the graph")
    # the timer's way, a topic at a time: 10 calls are two rounds over its 5 topics (3 above, /rosout, /parameter_events)
    problems = [problem for _ in range(10) for problem in node.check_next_topic()]
    assert len(problems) == 2, problems
    qos, kind = sorted(problems)
    assert qos.startswith("publisher of /test_probe on /step has incompatible QoS") \
        and qos.endswith("Best effort publisher and reliable subscription"), qos
    assert kind.startswith("subscription of /test_probe on /arm/cmd_text has type std_msgs/msg/Float64"), kind
    assert "std_msgs/msg/String" in kind
    assert node.check_peers() == []  # once per peer, all topics at once too
    node.destroy_node()


def test_repeated_lines_are_throttled_with_a_count_and_new_ones_go_out_at_once():
    from iil_robot.nodes.common import RepeatThrottle

    now = [0.0]
    throttle = RepeatThrottle(1.0, clock=lambda: now[0])
    assert throttle.line("bad A") == "bad A"
    now[0] = 0.1
    assert throttle.line("bad A") is None
    now[0] = 0.2
    assert throttle.line("bad A") is None
    assert throttle.line("bad B") == "bad B (+2 repeats of the previous line, not logged)"  # a new line: at once
    now[0] = 0.5
    assert throttle.line("bad B") is None
    now[0] = 1.3  # a period after "bad B" went out
    assert throttle.line("bad B") == "bad B (+1 repeats of the previous line, not logged)"
