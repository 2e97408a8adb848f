"""The observer's TF fields, in a node process, against the tf2_ros stand-in (tests/stand_ins/tf2_ros).

The real tf2_ros is not on the pip wheels, so these tests run the observer's TF path against a stand-in
that answers lookups from TransformStamped messages the test publishes; the real Buffer and
TransformListener have not run here.
"""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import TransformStamped
from sensor_msgs.msg import JointState
from std_msgs.msg import String

from iil_robot.cli.graph import NodeSpec
from iil_robot.data.records import Observation
from iil_robot.nodes.common import RECORD_QOS, SENSOR_QOS
from tests.nodes.conftest import assert_stops_with
from tests.stand_ins.tf2_ros import FORGET_TOPIC, QOS, TOPIC

STAND_INS = Path(__file__).resolve().parents[1] / "stand_ins"
STARTUP = 30.0
FINGERS = ["finger_l", "finger_r"]
PARAMETERS = {
    "observation_spec": "ur5e/tf", "frame_id": "base", "fields": ["ee", "rot", "fingers"], "publish_on": "fingers",
    "fields.ee.kind": "position", "fields.ee.child_frame_id": "tool0", "fields.ee.timeout": 0.3,
    "fields.rot.kind": "orientation", "fields.rot.child_frame_id": "tool0", "fields.rot.timeout": 0.3,
    "fields.fingers.kind": "joint_positions", "fields.fingers.topic": "joint_states", "fields.fingers.joints": FINGERS,
}


def observer(**overrides) -> NodeSpec:
    return NodeSpec("observer", "iil_robot.nodes.observer", parameters={**PARAMETERS, **overrides})


def with_stand_in(graph) -> None:
    """The observer process imports tests/stand_ins/tf2_ros as tf2_ros."""
    graph.env["PYTHONPATH"] = os.pathsep.join(p for p in (str(STAND_INS), graph.env.get("PYTHONPATH", "")) if p)


def transform(stamp, xyz: tuple[float, float, float]) -> TransformStamped:
    msg = TransformStamped()
    msg.header.stamp, msg.header.frame_id, msg.child_frame_id = stamp, "base", "tool0"
    msg.transform.translation.x, msg.transform.translation.y, msg.transform.translation.z = xyz
    msg.transform.rotation.x, msg.transform.rotation.w = 1.0, 0.0  # tool pointing down
    return msg


def holding(diagnostics, field: str, words: str) -> bool:
    """A /diagnostics message since the last look says ``field`` holds the observation because of ``words``."""
    return any(kv.key == field and words in kv.value
               for array in diagnostics.messages for status in array.status if status.name == "observer"
               for kv in status.values)


def test_a_tf_field_carries_the_transform_goes_stale_without_one_and_holds_on_a_failed_lookup(graph, probe):
    with_stand_in(graph)
    process = graph.start(observer())
    tf_pub = probe.publisher(TransformStamped, TOPIC, QOS)
    forget_pub = probe.publisher(String, FORGET_TOPIC, QOS)
    joints_pub = probe.publisher(JointState, "joint_states", SENSOR_QOS)
    observations = probe.collect(String, "observation", RECORD_QOS)
    diagnostics = probe.collect(DiagnosticArray, "/diagnostics", 10)
    tf = {"xyz": (0.4, -0.1, 0.3), "on": True}

    def tick() -> None:  # the driver's joint states at 50 Hz; robot_state_publisher's TF while "on"
        now = probe.node.get_clock().now().to_msg()
        if tf["on"]:
            tf_pub.publish(transform(now, tf["xyz"]))
        state = JointState(name=FINGERS, position=[0.01, 0.02])
        state.header.stamp = now
        joints_pub.publish(state)

    probe.node.create_timer(0.02, tick)
    probe.wait_for(lambda: len(observations) >= 5, STARTUP, "observations with the TF pose")
    observation = Observation.decode(observations.messages[-1].data)
    assert observation.fields == ("ee.x", "ee.y", "ee.z", "rot.qx", "rot.qy", "rot.qz", "rot.qw",
                                  "fingers.finger_l", "fingers.finger_r")
    assert observation.values == pytest.approx((0.4, -0.1, 0.3, 1.0, 0.0, 0.0, 0.0, 0.01, 0.02))

    # TF goes quiet while joint states go on: the lookup answers the last transform, which ages past its timeout
    tf["on"] = False
    diagnostics.messages.clear()
    probe.wait_for(lambda: holding(diagnostics, "ee", "stale: the newest message on /tf (tool0)"), 10.0,
                   "the TF field reported stale")
    held_at = len(observations)
    diagnostics.messages.clear()
    probe.wait_for(lambda: len(diagnostics) >= 1, 5.0, "the next diagnostics")
    assert len(observations) == held_at, "an observation went out while a TF field was stale"

    # the stand-in stops answering: the lookup fails, is logged with the frames, and the field holds
    forget_pub.publish(String(data="tool0"))
    diagnostics.messages.clear()
    probe.wait_for(lambda: holding(diagnostics, "ee", "TF lookup base -> tool0 failed"), 10.0, "the failed lookup reported")
    assert process.popen.poll() is None, graph.report(process)
    assert "field 'ee': TF lookup base -> tool0 failed (LookupException" in process.log_path.read_text()

    # TF answers again, from elsewhere: observations resume with the new pose
    tf.update(xyz=(0.5, 0.0, 0.2), on=True)
    held_at = len(observations)
    probe.wait_for(lambda: len(observations) >= held_at + 3, 10.0, "observations after TF came back")
    assert Observation.decode(observations.messages[-1].data).values[:3] == pytest.approx((0.5, 0.0, 0.2))


@pytest.mark.skipif(importlib.util.find_spec("tf2_ros") is not None, reason="tf2_ros is installed here")
def test_without_tf2_ros_a_tf_field_stops_the_observer_naming_the_package_and_the_alternative(graph):
    assert_stops_with(graph, observer(), "fields 'ee' (child_frame_id 'tool0'), 'rot' (child_frame_id 'tool0') read TF, "
                                         "but tf2_ros cannot be imported")
    log = graph.processes["observer"].log_path.read_text()
    assert "sudo apt install ros-jazzy-tf2-ros" in log and "geometry_msgs/PoseStamped topic" in log


def test_a_tf_field_cannot_trigger_the_observation(graph):
    with_stand_in(graph)
    assert_stops_with(graph, observer(publish_on="ee"), "parameter 'publish_on'='ee' names a TF field")
