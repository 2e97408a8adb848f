"""The mux node in its own process: explicit zeros when sources die, locks, records, service."""
from __future__ import annotations

import time

import pytest
from geometry_msgs.msg import TwistStamped
from std_msgs.msg import Bool, String
from std_srvs.srv import SetBool

from iil_robot.cli.graph import NodeSpec
from iil_robot.config import config_path
from iil_robot.data.records import InterventionEvent, StepRecord
from iil_robot.nodes.common import COMMAND_QOS, EVENTS_QOS, LATCHED_QOS, RECORD_QOS
from tests.nodes.conftest import assert_stops_with

STARTUP = 30.0  # s: generous, processes start slowly on a loaded CI machine
POLICY_TIMEOUT = 0.25  # as in config/mux.yaml
HUMAN_TIMEOUT = 0.1
# Scheduling allowance on top of the timeout: the watchdog wakes 1 ms after it (STALE_AFTER), plus
# process wake-up and transport on a shared 2-core machine.
ALLOWANCE = 0.05


def mux_spec(**parameters) -> NodeSpec:
    return NodeSpec("mux", "iil_robot.nodes.mux", params_files=(str(config_path("mux.yaml")),), parameters=parameters)


def policy_spec() -> NodeSpec:
    return NodeSpec("policy", "iil_robot.nodes.scripted_policy")


def twist_of(msg: TwistStamped) -> tuple[float, ...]:
    t = msg.twist
    return (t.linear.x, t.linear.y, t.linear.z, t.angular.x, t.angular.y, t.angular.z)


def is_zero(msg: TwistStamped) -> bool:
    return all(v == 0.0 for v in twist_of(msg))


def stamp_seconds(msg: TwistStamped) -> float:
    return msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9


def first_zero_after(received, t0: float) -> float | None:
    return next((t for m, t in zip(received.messages, received.times) if t >= t0 and is_zero(m)), None)


def test_policy_sigkill_gives_an_explicit_zero_within_the_timeout(graph, probe):
    graph.start(mux_spec())
    graph.start(policy_spec())
    cmds = probe.collect(TwistStamped, "arm/cmd", COMMAND_QOS)
    probe.wait_for(lambda: any(not is_zero(m) for m in cmds.messages), STARTUP, "policy commands on arm/cmd")
    moving = next(m for m in cmds.messages if not is_zero(m))
    assert moving.header.frame_id == "base_link"

    killed_at, killed_at_wall = time.monotonic(), time.time()
    graph.kill("policy")
    probe.wait_for(lambda: first_zero_after(cmds, killed_at) is not None, 5.0, "a zero command after the kill")
    # measured by the mux's own send stamp: the probe's delivery delay on a loaded machine is not the mux's latency
    zero = next(m for m, t in zip(cmds.messages, cmds.times) if t >= killed_at and is_zero(m))
    latency = stamp_seconds(zero) - killed_at_wall
    assert latency <= POLICY_TIMEOUT + ALLOWANCE, f"the mux sent its zero {latency:.3f} s after SIGKILL"

    probe.spin_for(0.5)  # the arm stays stopped: nothing but zeros afterwards
    after = [m for m in cmds.messages if stamp_seconds(m) >= stamp_seconds(zero)]
    assert after and all(is_zero(m) for m in after)


def test_human_silent_mid_intervention_gives_zero_and_never_hands_to_the_policy(graph, probe):
    graph.start(mux_spec())
    graph.start(policy_spec())
    cmds = probe.collect(TwistStamped, "arm/cmd", COMMAND_QOS)
    interventions = probe.collect(String, "intervention", EVENTS_QOS)
    engaged_pub = probe.publisher(Bool, "human/engaged", LATCHED_QOS)
    human_pub = probe.publisher(TwistStamped, "human/cmd", COMMAND_QOS)
    human = TwistStamped()
    human.twist.linear.z = 0.1  # the scripted policy never moves in z: easy to tell apart
    sent: list[float] = []

    def publish_human() -> None:
        human_pub.publish(human)
        sent.append(time.monotonic())

    probe.wait_for(lambda: any(not is_zero(m) for m in cmds.messages), STARTUP, "policy commands")
    engaged_pub.publish(Bool(data=True))
    timer = probe.node.create_timer(0.01, publish_human)
    probe.wait_for(lambda: any(twist_of(m)[2] == pytest.approx(0.1) for m in cmds.messages), 5.0, "human command on arm/cmd")
    probe.spin_for(0.2)
    timer.cancel()
    last_sent = sent[-1]

    probe.wait_for(lambda: first_zero_after(cmds, last_sent) is not None, 5.0, "zero after the human went silent")
    latency = first_zero_after(cmds, last_sent) - last_sent
    assert latency <= HUMAN_TIMEOUT + ALLOWANCE, f"zero came {latency:.3f} s after the last human message"
    probe.spin_for(0.6)  # the policy is alive, but the operator still holds control: zeros only
    after = [m for m, t in zip(cmds.messages, cmds.times) if t > last_sent + latency]
    assert after and all(is_zero(m) for m in after)
    events = [InterventionEvent.decode(m.data) for m in interventions.messages]
    assert [e.intervening for e in events] == [True]


def test_estop_heartbeat_locks_until_first_message_on_true_and_when_its_publisher_dies(graph, probe):
    graph.start(mux_spec(**{"locks.estop.timeout": 0.3}))
    graph.start(policy_spec())
    cmds = probe.collect(TwistStamped, "arm/cmd", COMMAND_QOS)
    steps = probe.collect(String, "step", RECORD_QOS)

    # locked until the first heartbeat: the live policy's commands never reach the arm
    probe.wait_for(lambda: len(steps) >= 10, STARTUP, "10 step records")
    assert all(is_zero(m) for m in cmds.messages)
    assert all(StepRecord.decode(m.data).hold_reason.startswith("locked:estop (no heartbeat yet") for m in steps.messages)

    graph.start(NodeSpec("estop_heartbeat", "iil_robot.nodes.estop_heartbeat"))
    probe.wait_for(lambda: any(not is_zero(m) for m in cmds.messages), STARTUP, "motion once the heartbeat runs")

    # engaged: zero at once
    estop_pub = probe.publisher(Bool, "estop", COMMAND_QOS)
    probe.wait_for(lambda: estop_pub.get_subscription_count() > 0, 5.0, "mux subscribed to estop")
    pressed = time.monotonic()
    estop_pub.publish(Bool(data=True))
    probe.wait_for(lambda: first_zero_after(cmds, pressed) is not None, 5.0, "zero after e-stop")
    assert first_zero_after(cmds, pressed) - pressed < 0.1
    probe.wait_for(lambda: any(not is_zero(m) for m, t in zip(cmds.messages, cmds.times) if t > pressed + 0.1),
                   5.0, "motion again with the next heartbeat (false)")

    # publisher dies: locked again within the heartbeat timeout
    killed = time.monotonic()
    graph.kill("estop_heartbeat")
    probe.wait_for(lambda: first_zero_after(cmds, killed) is not None, 5.0, "zero after the heartbeat died")
    latency = first_zero_after(cmds, killed) - killed
    assert latency <= 0.3 + ALLOWANCE
    probe.spin_for(0.4)
    assert all(is_zero(m) for m, t in zip(cmds.messages, cmds.times) if t > killed + latency)


def test_one_step_record_per_proposal_carrying_its_observation(graph, probe):
    graph.start(mux_spec())
    graph.start(policy_spec())
    steps = probe.collect(String, "step", RECORD_QOS)
    probe.wait_for(lambda: len(steps) >= 45, STARTUP, "45 step records")
    records = [StepRecord.decode(m.data) for m in steps.messages]
    policy_ticks = [int(r.observation[2]) for r in records if r.source == "policy"]
    assert len(policy_ticks) >= 30
    # consecutive policy ticks: none lost, none doubled
    assert policy_ticks == list(range(policy_ticks[0], policy_ticks[0] + len(policy_ticks)))
    ticks = [r.tick for r in records]
    assert ticks == list(range(ticks[0], ticks[0] + len(ticks)))
    driven = [r for r in records if r.source == "policy"]
    # Proposals queued while the mux starts arrive milliseconds apart, and the acceleration
    # limit rightly ramps those; after that transient the policy's action passes unchanged.
    steady = driven[10:]
    assert len(steady) >= 20 and not any(r.limited for r in steady)
    for r in driven:
        if not r.limited:
            assert r.executed_action == pytest.approx(r.policy_action, abs=1e-9)
        assert r.policy_version == 0 and not r.intervention


def test_diagnostics_name_the_nodes_the_step_records_reach(graph, probe):
    from diagnostic_msgs.msg import DiagnosticArray

    from iil_robot.command.mux import step_records_reach

    graph.start(mux_spec())
    probe.collect(String, "step", RECORD_QOS)
    diagnostics = probe.collect(DiagnosticArray, "/diagnostics", 10)

    def reached() -> bool:
        return any(step_records_reach({kv.key: kv.value for kv in s.values}, {"test_probe"})
                   for m in diagnostics.messages for s in m.status if s.name == "mux: arbitration")

    probe.wait_for(reached, STARTUP, "the mux reporting its step records reach test_probe")


def test_pause_service_holds_and_resumes(graph, probe):
    graph.start(mux_spec())
    graph.start(policy_spec())
    cmds = probe.collect(TwistStamped, "arm/cmd", COMMAND_QOS)
    client = probe.node.create_client(SetBool, "/mux/pause")
    probe.wait_for(client.service_is_ready, STARTUP, "the /mux/pause service")
    probe.wait_for(lambda: any(not is_zero(m) for m in cmds.messages), STARTUP, "policy commands")

    def call(pause: bool) -> SetBool.Response:
        future = client.call_async(SetBool.Request(data=pause))
        probe.wait_for(future.done, 5.0, "the pause service reply")
        return future.result()

    assert call(True).message == "paused"
    replied = time.monotonic()  # the mux holds from its reply on; a command it sent before may still be on its way
    probe.spin_for(0.3)
    held = [m for m, t in zip(cmds.messages, cmds.times) if t > replied + 0.05]
    assert held and all(is_zero(m) for m in held)
    resumed = time.monotonic()
    assert call(False).message == "resumed"
    probe.wait_for(lambda: any(not is_zero(m) for m, t in zip(cmds.messages, cmds.times) if t > resumed),
                   5.0, "motion after resume")


@pytest.mark.parametrize(
    "parameters, message",
    [
        ({"limits.max_linear_speed": -1.0}, "limits.max_linear_speed"),
        ({"topics.policy.type": "planner"}, "topics.policy.type='planner'"),
        ({"rate": 5000.0}, "rate"),
    ],
)
def test_bad_parameter_stops_the_node_with_a_clear_message(graph, parameters, message):
    assert_stops_with(graph, mux_spec(**parameters), message)


HOSTILE_PROPOSALS = {
    "NaN obs_stamp": '"obs_stamp":NaN',
    "400-digit action": '"action":[' + "9" * 400 + ",0,0,0,0,0,0]",
    "5000-digit obs_stamp": '"obs_stamp":' + "9" * 5000,
}


def test_hostile_proposals_are_logged_and_the_mux_keeps_ticking(graph, probe):
    from iil_robot.data.records import Proposal

    process = graph.start(mux_spec())
    steps = probe.collect(String, "step", RECORD_QOS)
    proposals = probe.publisher(String, "policy/proposal", RECORD_QOS)
    probe.wait_for(lambda: len(steps) > 0, STARTUP, "the mux's self-ticks")
    good = Proposal((0.05, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0), (1.0,), 1, 0.0, 0.0).encode()
    hostile = [good.replace('"obs_stamp":0.0', HOSTILE_PROPOSALS["NaN obs_stamp"]),
               good.replace('"action":[0.05,0.0,0.0,0.0,0.0,0.0,0.0]', HOSTILE_PROPOSALS["400-digit action"]),
               good.replace('"obs_stamp":0.0', HOSTILE_PROPOSALS["5000-digit obs_stamp"]),
               "[" * 100_000 + "]" * 100_000]
    for text in hostile:
        proposals.publish(String(data=text))
    probe.spin_for(0.2)
    seen = len(steps)

    def policy_drives() -> bool:
        return any(StepRecord.decode(m.data).source == "policy" for m in steps.messages[seen:])

    probe.wait_for(policy_drives, 10.0, "a step record driven by a good proposal after the hostile ones",
                   every=lambda: proposals.publish(String(data=good)))
    assert process.popen.poll() is None
    log = process.log_path.read_text()
    assert "undecodable proposal" in log and "[FATAL]" not in log, log[-2000:]
    decoded = [StepRecord.decode(m.data) for m in steps.messages]
    assert all(s.source == "hold" for s in decoded[:seen])  # the hostile ones never drove the arm


def set_parameter(probe, value) -> tuple[bool, str]:
    """Set limits.max_linear_speed on the running mux through its set_parameters service."""
    from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
    from rcl_interfaces.srv import SetParameters

    client = probe.node.create_client(SetParameters, "/mux/set_parameters")
    probe.wait_for(client.service_is_ready, STARTUP, "the mux's set_parameters service")
    kinds = {float: ("double_value", ParameterType.PARAMETER_DOUBLE), int: ("integer_value", ParameterType.PARAMETER_INTEGER),
             str: ("string_value", ParameterType.PARAMETER_STRING), type(None): (None, ParameterType.PARAMETER_NOT_SET)}
    field, kind = kinds[type(value)]
    parameter_value = ParameterValue(type=kind, **({field: value} if field else {}))
    request = SetParameters.Request(parameters=[Parameter(name="limits.max_linear_speed", value=parameter_value)])
    future = client.call_async(request)
    probe.wait_for(future.done, 10.0, "the set_parameters answer")
    result = future.result().results[0]
    return result.successful, result.reason


def test_a_safety_limit_changes_safely_at_run_time_or_is_refused(graph, probe):
    from iil_robot.data.records import Proposal

    graph.start(mux_spec(**{"limits.max_linear_accel": 0.0}))
    cmds = probe.collect(TwistStamped, "arm/cmd", COMMAND_QOS)
    proposals = probe.publisher(String, "policy/proposal", RECORD_QOS)
    fast = Proposal((1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0), (1.0,), 1, 0.0, 0.0).encode()
    for bad, why in ((-1, "out of range"), (10**9, "out of range"), ("fast", "must be a number"), (None, "cannot be unset")):
        ok, reason = set_parameter(probe, bad)
        assert not ok and why in reason, (bad, reason)
    ok, reason = set_parameter(probe, 1)  # an integer, as `ros2 param set` sends it: taken as 1.0 (in range)
    assert ok, reason
    ok, reason = set_parameter(probe, 0.1)
    assert ok, reason
    seen = len(cmds)
    probe.wait_for(lambda: any(m.twist.linear.x > 0 for m in cmds.messages[seen:]), 10.0, "a policy command",
                   every=lambda: proposals.publish(String(data=fast)))
    moving = [m.twist.linear.x for m in cmds.messages[seen:] if m.twist.linear.x > 0]
    assert max(moving) == pytest.approx(0.1), moving  # the new limit applies, not the 0.25 of the file
    ok, reason = set_parameter_named(probe, "rate")
    assert not ok and "read-only at run time" in reason


def set_parameter_named(probe, name: str) -> tuple[bool, str]:
    from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
    from rcl_interfaces.srv import SetParameters

    client = probe.node.create_client(SetParameters, "/mux/set_parameters")
    probe.wait_for(client.service_is_ready, STARTUP, "the mux's set_parameters service")
    value = ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=50.0)
    future = client.call_async(SetParameters.Request(parameters=[Parameter(name=name, value=value)]))
    probe.wait_for(future.done, 10.0, "the set_parameters answer")
    result = future.result().results[0]
    return result.successful, result.reason


SERVO_TIMEOUT = 0.1  # s: MoveIt Servo's default incoming_command_timeout


class ServoStandIn:
    """What MoveIt Servo does with arm/cmd: it halts the arm whenever no command came for ``incoming_command_timeout``.
    Counts those halts (gaps between commands longer than the timeout) while it is watching."""

    def __init__(self, probe, timeout: float = SERVO_TIMEOUT) -> None:
        self.timeout = timeout
        self.watching = False
        self.last = None
        self.gaps: list[float] = []
        probe.node.create_subscription(TwistStamped, "arm/cmd", self._on_cmd, COMMAND_QOS)

    def _on_cmd(self, msg: TwistStamped) -> None:
        now = time.monotonic()
        if self.watching and self.last is not None and now - self.last > self.timeout:
            self.gaps.append(now - self.last)
        self.last = now


def test_servo_stand_in_never_halts_while_a_slow_jittery_policy_drives(graph, probe):
    """A policy proposing every 80-220 ms (slower than the mux's 20 Hz, within its 0.25 s timeout) drives for 3 s:
    the mux refreshes the command every control period, so Servo's 0.1 s timeout never expires."""
    import random

    from iil_robot.data.records import Proposal

    graph.start(mux_spec())
    servo = ServoStandIn(probe)
    steps = probe.collect(String, "step", RECORD_QOS)
    proposal_pub = probe.publisher(String, "policy/proposal", RECORD_QOS)
    rng = random.Random(0)
    sent: list[float] = []

    def propose() -> None:
        now = time.monotonic()
        action = (0.05, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
        proposal_pub.publish(String(data=Proposal(action, (float(len(sent)),), 0, now, now).encode()))
        sent.append(now)
        timer.timer_period_ns = round(rng.uniform(0.08, 0.22) * 1e9)
        timer.reset()

    probe.wait_for(lambda: proposal_pub.get_subscription_count() > 0 and len(steps) > 0, STARTUP, "the mux up")
    timer = probe.node.create_timer(0.1, propose)
    probe.wait_for(lambda: any(StepRecord.decode(m.data).source == "policy" for m in steps.messages), 5.0, "policy steps")
    servo.watching, servo.last = True, None
    probe.spin_for(3.0)
    servo.watching = False
    timer.cancel()

    proposal_gaps = [b - a for a, b in zip(sent, sent[1:])]
    assert max(proposal_gaps) > SERVO_TIMEOUT, "the policy must propose more slowly than Servo's timeout for this test"
    assert servo.gaps == [], f"Servo would have halted the arm {len(servo.gaps)} times: gaps {servo.gaps}"
    policy_steps = [StepRecord.decode(m.data) for m in steps.messages if StepRecord.decode(m.data).source == "policy"]
    assert len(policy_steps) <= len(sent), "refreshes are not ticks: one step record per proposal"


def test_an_arm_fault_on_diagnostics_holds_the_arm_until_the_operator_recovers(graph, probe):
    """A diagnostics lock (e.g. a relay of the Franka robot mode) with latching: ERROR holds the arm and the held
    ticks are recorded as holds; OK again does not release it; ~/recover does."""
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
    from std_srvs.srv import Trigger

    graph.start(mux_spec(**{"locks.arm_fault.topic": "arm/status", "locks.arm_fault.type": "diagnostics",
                            "locks.arm_fault.status": "arm: robot mode", "locks.arm_fault.latching": True}))
    graph.start(policy_spec())
    steps = probe.collect(String, "step", RECORD_QOS)
    status_pub = probe.publisher(DiagnosticArray, "arm/status", 10)
    client = probe.node.create_client(Trigger, "/mux/recover")
    probe.wait_for(client.service_is_ready, STARTUP, "the /mux/recover service")
    probe.wait_for(lambda: status_pub.get_subscription_count() > 0, STARTUP, "the mux subscribed to arm/status")

    def sources_after(t0: float) -> list[StepRecord]:
        return [StepRecord.decode(m.data) for m, t in zip(steps.messages, steps.times) if t > t0]

    def report(level: bytes, name: str = "arm: robot mode") -> float:
        status_pub.publish(DiagnosticArray(status=[DiagnosticStatus(name=name, level=level, message="x")]))
        return time.monotonic()

    def recover() -> Trigger.Response:
        future = client.call_async(Trigger.Request())
        probe.wait_for(future.done, 5.0, "the recover service reply")
        return future.result()

    probe.wait_for(lambda: any(r.source == "policy" for r in sources_after(0.0)), STARTUP, "policy steps")
    report(DiagnosticStatus.OK)  # the arm is fine
    report(DiagnosticStatus.ERROR, name="camera")  # another component's error: no lock
    faulted = report(DiagnosticStatus.ERROR)
    probe.wait_for(lambda: len(sources_after(faulted + 0.05)) >= 5, 5.0, "steps after the fault")
    assert all(r.source == "hold" and r.hold_reason.startswith("locked:arm_fault") for r in sources_after(faulted + 0.05))
    assert not recover().success  # still faulted: nothing to recover
    cleared = report(DiagnosticStatus.OK)
    probe.wait_for(lambda: len(sources_after(cleared + 0.05)) >= 5, 5.0, "steps after the fault cleared")
    held = sources_after(cleared + 0.05)
    assert all(r.source == "hold" and "waiting for recovery" in r.hold_reason for r in held)
    assert all(r.policy_action is not None for r in held)  # the policy's proposal is kept, never as executed
    response = recover()
    assert response.success and response.message == "recovered arm_fault"
    recovered = time.monotonic()
    probe.wait_for(lambda: any(r.source == "policy" for r in sources_after(recovered)), 5.0, "policy drives again")


def test_gripper_positions_go_to_a_position_controller_with_hysteresis(graph, probe):
    from std_msgs.msg import Float64MultiArray

    graph.start(mux_spec(**{"gripper.mode": "binary", "gripper.open_position": 0.04, "gripper.closed_position": 0.01}))
    graph.start(NodeSpec("policy", "iil_robot.nodes.scripted_policy", parameters={"gripper": 0.7}))
    commands = probe.collect(Float64MultiArray, "gripper/commands", COMMAND_QOS)

    def closed() -> list[bool]:  # closed_position 0.01, open 0.04
        return [abs(m.data[0] - 0.01) < 1e-9 for m in commands.messages]

    # held open until the policy's first proposal; 0.7 >= close_above: then closed, every tick
    probe.wait_for(lambda: True in closed() and len(closed()) - closed().index(True) >= 5, STARTUP,
                   "five closed gripper commands")
    after = closed()[closed().index(True):]
    assert all(after)  # no chatter back to open


@pytest.mark.parametrize("output, missing", [("gripper_command", "control_msgs/action/GripperCommand"),
                                             ("franka", "franka_msgs/action/Grasp")])
def test_a_gripper_action_whose_package_is_missing_is_named_and_the_arm_held(graph, probe, output, missing):
    try:
        __import__(missing.split("/")[0])
        pytest.skip(f"{missing.split('/')[0]} is installed here")
    except ImportError:
        pass
    graph.start(mux_spec(**{"gripper.output": output, "gripper.mode": "binary"}))
    graph.start(policy_spec())
    steps = probe.collect(String, "step", RECORD_QOS)
    probe.wait_for(lambda: sum(StepRecord.decode(m.data).policy_action is not None for m in steps.messages) >= 10,
                   STARTUP, "10 step records while the policy proposes")
    records = [StepRecord.decode(m.data) for m in steps.messages]
    assert all(r.source == "hold" and r.hold_reason == "gripper output unavailable" for r in records)
    assert f"{missing} cannot be imported" in graph.tail("mux", 20)
