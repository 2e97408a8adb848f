"""The arm_status relay in its own process: a driver's status field as the DiagnosticStatus the mux's lock watches.

franka_msgs is not installed here, so std_msgs/msg/UInt8 stands in for FrankaRobotState (``data`` for robot_mode).
"""
from __future__ import annotations

import time

import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from std_msgs.msg import String, UInt8

from iil_robot.cli.graph import NodeSpec
from iil_robot.command.arm_status import ArmStatus, ArmStatusConfig, ArmStatusError, field_value, value_name
from iil_robot.data.records import StepRecord
from iil_robot.nodes.common import RECORD_QOS, SENSOR_QOS
from tests.nodes.conftest import assert_stops_with
from tests.nodes.test_mux_node import STARTUP, mux_spec, policy_spec

STATUS = "franka_robot_mode"


def number(level) -> int:  # rclpy gives byte fields and constants as one byte
    return ord(level) if isinstance(level, bytes) else level


OK, ERROR, STALE = (number(c) for c in (DiagnosticStatus.OK, DiagnosticStatus.ERROR, DiagnosticStatus.STALE))


def relay_levels(statuses, since: float) -> list[int]:
    """Levels of the relay's status in the DiagnosticArrays received at or after ``since``."""
    return [number(s.level) for m, t in zip(statuses.messages, statuses.times) if t >= since
            for s in m.status if s.name == STATUS]


def relay_spec(**parameters) -> NodeSpec:
    return NodeSpec("arm_status", "iil_robot.nodes.arm_status", parameters={
        "message_type": "std_msgs/msg/UInt8", "topic": "robot_state", "field": "data", "ok_values": [1, 2],
        "status_name": STATUS, "timeout": 0.5, **parameters})


class Mode:  # what rclpy makes of a FrankaRobotState, as far as the relay reads it
    ROBOT_MODE_IDLE, ROBOT_MODE_MOVE, ROBOT_MODE_REFLEX = 1, 2, 4

    def __init__(self, robot_mode) -> None:
        self.robot_mode = robot_mode


def test_the_verdict_names_the_mode_by_the_message_constant_and_goes_stale():
    status = ArmStatus(ArmStatusConfig("robot_mode", (1, 2), timeout=0.5), lambda v: value_name(Mode, "robot_mode", v))
    assert status.verdict(0.0).level == "stale"  # nothing heard yet: the mux holds
    status.update(field_value(Mode(2), "robot_mode"), 1.0)
    assert status.verdict(1.1).level == "ok"
    status.update(field_value(Mode(4), "robot_mode"), 2.0)
    verdict = status.verdict(2.1)
    assert verdict.level == "error" and "ROBOT_MODE_REFLEX" in verdict.message and "ROBOT_MODE_IDLE" in verdict.message
    assert status.verdict(2.6).level == "stale"
    assert value_name(Mode, "robot_mode", 9) == "9"


@pytest.mark.parametrize("msg, path, problem", [(Mode(2), "mode", "no field 'mode'"), (Mode(2.5), "robot_mode", "float"),
                                                (Mode(b"\x04"), "robot_mode", None), (Mode(True), "robot_mode", None)])
def test_a_field_that_is_missing_or_not_an_integer_is_named(msg, path, problem):
    if problem is None:
        assert field_value(msg, path) in (4, 1)
    else:
        with pytest.raises(ArmStatusError, match=problem):
            field_value(msg, path)


@pytest.mark.parametrize("kwargs, problem", [({"field": ""}, "dotted path"), ({"field": "a..b"}, "dotted path"),
                                             ({"ok_values": ()}, "ok_values is empty"), ({"timeout": 0.0}, "timeout")])
def test_a_wrong_configuration_is_refused_by_name(kwargs, problem):
    with pytest.raises(ArmStatusError, match=problem):
        ArmStatusConfig(**{"field": "robot_mode", "ok_values": (1, 2), **kwargs})


def test_a_reflex_relayed_from_the_driver_holds_the_arm_until_recovered_and_silence_holds_it_too(graph, probe):
    from std_srvs.srv import Trigger

    graph.start(mux_spec(**{"locks.arm_fault.topic": "/diagnostics", "locks.arm_fault.type": "diagnostics",
                            "locks.arm_fault.status": STATUS, "locks.arm_fault.latching": True}))
    graph.start(policy_spec())
    graph.start(relay_spec())
    steps = probe.collect(String, "step", RECORD_QOS)
    statuses = probe.collect(DiagnosticArray, "/diagnostics", 10)
    mode_pub = probe.publisher(UInt8, "robot_state", SENSOR_QOS)
    client = probe.node.create_client(Trigger, "/mux/recover")

    def levels(since: float) -> list[int]:
        return relay_levels(statuses, since)

    def records(since: float) -> list[StepRecord]:
        return [StepRecord.decode(m.data) for m, t in zip(steps.messages, steps.times) if t >= since]

    mode = [2]
    probe.wait_for(lambda: STALE in levels(0.0), STARTUP, "STALE before the driver's first message")
    probe.wait_for(lambda: mode_pub.get_subscription_count() > 0 and client.service_is_ready(), STARTUP, "the relay and mux")
    driver = probe.node.create_timer(0.02, lambda: mode_pub.publish(UInt8(data=mode[0])))  # a driver's state at 50 Hz

    def publish(value: int) -> float:
        mode[0] = value
        return time.monotonic()

    moving = publish(2)
    probe.wait_for(lambda: any(r.source == "policy" for r in records(moving)), STARTUP, "the policy driving (robot mode move)")
    reflex = publish(4)
    probe.wait_for(lambda: ERROR in levels(reflex), 5.0, "ERROR for a reflex")
    error = next(s for m in statuses.messages for s in m.status if s.name == STATUS and s.message.startswith("data = 4"))
    assert "the arm may not move" in error.message
    probe.wait_for(lambda: len(records(reflex + 0.2)) >= 5, 5.0, "steps after the reflex")
    assert all(r.source == "hold" and r.hold_reason.startswith("locked:arm_fault") for r in records(reflex + 0.2))

    idle = publish(1)  # franka's error recovery done: OK again, but the lock waits for the operator
    probe.wait_for(lambda: OK in levels(idle), 5.0, "OK after recovery")
    future = client.call_async(Trigger.Request())
    probe.wait_for(future.done, 5.0, "the recover reply")
    assert future.result().success
    recovered = time.monotonic()
    probe.wait_for(lambda: any(r.source == "policy" for r in records(recovered)), 5.0, "the policy driving again")

    driver.cancel()
    silent = time.monotonic()  # the driver goes quiet: STALE, and the arm is held again
    probe.wait_for(lambda: STALE in levels(silent), 5.0, "STALE once the driver is silent")
    stale = time.monotonic()
    probe.wait_for(lambda: len(records(stale + 0.1)) >= 5, 5.0, "steps after the status went stale")
    assert all(r.source == "hold" for r in records(stale + 0.1))
    assert graph.processes["arm_status"].popen.poll() is None


def test_a_status_type_that_cannot_be_imported_stops_the_relay_with_the_package_to_install(graph):
    assert_stops_with(graph, relay_spec(message_type="franka_msgs/msg/FrankaRobotState"),
                      "franka_msgs/msg/FrankaRobotState cannot be imported")
    assert "install franka_msgs" in graph.tail("arm_status", 20)


def test_a_relay_without_a_field_stops_naming_it(graph):
    assert_stops_with(graph, relay_spec(field=""), "field '' must be a dotted path")


def test_a_simulated_fault_reaches_the_relay_as_it_would_from_a_driver(graph, probe):
    """``iil-robot sim --robot panda`` runs the relay on the simulated arm's status: ``~/simulate_fault`` raises it."""
    from geometry_msgs.msg import PoseStamped, TwistStamped
    from std_srvs.srv import SetBool

    from iil_robot.nodes.common import COMMAND_QOS

    graph.start(NodeSpec("sim_arm", "iil_robot.nodes.sim_arm", parameters={"status_topic": "robot_state"}))
    graph.start(relay_spec(ok_values=[0]))
    statuses = probe.collect(DiagnosticArray, "/diagnostics", 10)
    poses = probe.collect(PoseStamped, "ee_pose", SENSOR_QOS)
    client = probe.node.create_client(SetBool, "/sim_arm/simulate_fault")

    def levels(since: float) -> list[int]:
        return relay_levels(statuses, since)

    def fault(on: bool) -> float:
        future = client.call_async(SetBool.Request(data=on))
        probe.wait_for(future.done, 5.0, "the simulate_fault reply")
        assert future.result().success
        return time.monotonic()

    cmd_pub = probe.publisher(TwistStamped, "arm/cmd", COMMAND_QOS)
    push = TwistStamped()
    push.header.frame_id = "base_link"
    push.twist.linear.z = 0.1

    def height_change(since: float) -> float:
        heights = [m.pose.position.z for m, t in zip(poses.messages, poses.times) if t >= since]
        return heights[-1] - heights[0] if len(heights) > 1 else 0.0

    def drive(seconds: float) -> float:  # as the mux would: a command every tick
        t0 = time.monotonic()
        probe.wait_for(lambda: time.monotonic() - t0 > seconds, seconds + 5.0, "driving",
                       every=lambda: cmd_pub.publish(push))
        return height_change(t0)

    probe.wait_for(lambda: OK in levels(0.0) and client.service_is_ready(), STARTUP, "OK from the healthy simulated arm")
    raised = fault(True)
    probe.wait_for(lambda: ERROR in levels(raised), 5.0, "ERROR once the simulated arm faults")
    assert abs(drive(0.5)) < 0.002, "a faulted arm takes no command"
    cleared = fault(False)
    probe.wait_for(lambda: OK in levels(cleared), 5.0, "OK once the fault is cleared")
    assert drive(0.5) > 0.01, "the cleared arm moves again"
