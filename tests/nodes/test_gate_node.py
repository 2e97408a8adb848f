"""The spacemouse_gate node in its own process, fed like the spacenav driver, and with no device."""
from __future__ import annotations

import time

import pytest
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import TwistStamped
from sensor_msgs.msg import Joy
from std_msgs.msg import Bool, Float64, String

from iil_robot.cli.graph import NodeSpec
from iil_robot.config import config_path
from iil_robot.nodes.common import COMMAND_QOS, EVENTS_QOS, LATCHED_QOS, SENSOR_QOS
from tests.nodes.conftest import assert_stops_with

STARTUP = 30.0


def gate_spec(**parameters) -> NodeSpec:
    return NodeSpec("spacemouse_gate", "iil_robot.nodes.spacemouse_gate",
                    params_files=(str(config_path("spacemouse_gate.yaml")),), parameters=parameters)


class JoyStream:
    """Publishes spacenav/joy at 50 Hz with whatever axes and buttons the test sets."""

    def __init__(self, probe) -> None:
        self.pub = probe.publisher(Joy, "spacenav/joy", SENSOR_QOS)
        self.axes = [0.0] * 6
        self.buttons = [0, 0, 0]
        self.timer = probe.node.create_timer(0.02, self.publish)

    def publish(self) -> None:
        self.pub.publish(Joy(axes=list(self.axes), buttons=list(self.buttons)))

    def stop(self) -> float:
        self.timer.cancel()
        return time.monotonic()


def latest(received):
    return received.messages[-1] if received.messages else None


def test_joy_input_engages_commands_and_releases(probe, graph):
    graph.start(gate_spec(input="joy", release_time=0.3, **{"buttons.success": 2}))
    cmd = probe.collect(TwistStamped, "human/cmd", COMMAND_QOS)
    engaged = probe.collect(Bool, "human/engaged", LATCHED_QOS)
    gripper = probe.collect(Float64, "human/gripper", LATCHED_QOS)
    requests = probe.collect(String, "episode/request", EVENTS_QOS)
    joy = JoyStream(probe)
    probe.wait_for(lambda: engaged.messages and cmd.messages and gripper.messages, STARTUP, "the gate's first outputs")
    assert engaged.messages[-1].data is False and gripper.messages[-1].data == 0.0

    joy.axes = [0.0, 0.6, 0.0, 0.0, 0.0, 0.0]  # push left, above the 0.25 threshold
    probe.wait_for(lambda: latest(engaged).data, 5.0, "engagement")
    probe.wait_for(lambda: latest(cmd).twist.linear.y > 0.1, 5.0, "a leftward command")
    expected = 0.25 * (0.6 - 0.08) / (1 - 0.08)
    assert latest(cmd).twist.linear.y == pytest.approx(expected)
    assert latest(cmd).header.frame_id == "base_link"

    joy.buttons = [1, 0, 1]  # gripper toggle and "success"
    probe.wait_for(lambda: latest(gripper).data == 1.0, 5.0, "gripper closed")
    probe.wait_for(lambda: requests.messages, 5.0, "an episode request")
    assert requests.messages[0].data == "success"  # for the episode manager, which refuses it in the wrong state

    joy.axes, joy.buttons = [0.0] * 6, [0, 0, 0]
    let_go = time.monotonic()
    probe.wait_for(lambda: not latest(engaged).data, 5.0, "release")
    assert time.monotonic() - let_go >= 0.3 - 0.05  # not before the release time
    assert latest(cmd).twist.linear.y == 0.0


def test_on_a_two_button_compact_holding_both_buttons_asks_for_success_and_leaves_the_gripper(probe, graph):
    graph.start(gate_spec(input="joy"))
    gripper = probe.collect(Float64, "human/gripper", LATCHED_QOS)
    requests = probe.collect(String, "episode/request", EVENTS_QOS)
    joy = JoyStream(probe)
    joy.buttons = [0, 0]
    probe.wait_for(lambda: gripper.messages, STARTUP, "the gate's first outputs")
    joy.buttons = [1, 1]
    pressed = time.monotonic()
    probe.wait_for(lambda: requests.messages, 5.0, "the success request")
    assert time.monotonic() - pressed >= 1.0 - 0.05 and [m.data for m in requests.messages] == ["success"]
    joy.buttons = [0, 0]
    probe.spin_for(0.3)
    assert [m.data for m in gripper.messages] == [0.0] and len(requests.messages) == 1


def test_human_commands_go_out_at_the_gates_rate_not_at_the_inputs_as_well(probe, graph):
    """Every human/cmd costs the mux, the recorder and the arm a message: a 50 Hz joy stream beside a 20 Hz gate
    made 70 a second (the engagement itself still goes out at once, see above). At rest it slows to idle_rate."""
    graph.start(gate_spec(input="joy", rate=20.0, idle_rate=5.0))
    cmd = probe.collect(TwistStamped, "human/cmd", COMMAND_QOS)
    engaged = probe.collect(Bool, "human/engaged", LATCHED_QOS)
    joy = JoyStream(probe)

    def commands_per_second() -> float:
        before, started = len(cmd.messages), time.monotonic()
        probe.spin_for(2.0)
        return (len(cmd.messages) - before) / (time.monotonic() - started)

    probe.wait_for(lambda: len(cmd.messages) > 2, STARTUP, "idle human commands")
    idle = commands_per_second()  # the stick at rest: only enough to keep the mux's human source fresh
    assert 2.0 < idle < 8.0, f"{idle:.1f} human commands per second at rest"
    joy.axes = [0.6, 0.0, 0.0, 0.0, 0.0, 0.0]
    probe.wait_for(lambda: engaged.messages and latest(engaged).data, STARTUP, "engagement")
    driving = commands_per_second()
    assert 10.0 < driving < 30.0, f"{driving:.1f} human commands per second while driving"
    assert latest(cmd).twist.linear.x > 0.1
    joy.stop()


def test_joy_stream_dying_with_the_stick_deflected_zeroes_and_releases(probe, graph):
    graph.start(gate_spec(input="joy", input_timeout=0.3, release_time=5.0))
    cmd = probe.collect(TwistStamped, "human/cmd", COMMAND_QOS)
    engaged = probe.collect(Bool, "human/engaged", LATCHED_QOS)
    joy = JoyStream(probe)
    joy.axes = [0.8, 0.0, 0.0, 0.0, 0.0, 0.0]
    probe.wait_for(lambda: engaged.messages and latest(engaged).data, STARTUP, "engagement")
    silent_since = joy.stop()
    probe.wait_for(lambda: not latest(engaged).data, 5.0, "release after the input died")
    assert time.monotonic() - silent_since < 0.3 + 0.2
    probe.wait_for(lambda: latest(cmd).twist.linear.x == 0.0, 1.0, "zero human command")


def test_device_input_without_hidapi_reports_what_to_install_and_stays_safe(probe, graph):
    """This machine has no libhidapi and no SpaceMouse: the gate must say so and stay released."""
    process = graph.start(gate_spec(input="device"))
    cmd = probe.collect(TwistStamped, "human/cmd", COMMAND_QOS)
    engaged = probe.collect(Bool, "human/engaged", LATCHED_QOS)
    diagnostics = probe.collect(DiagnosticArray, "/diagnostics", 10)

    def gate_status():
        for array in diagnostics.messages:
            for status in array.status:
                if status.name == "spacemouse_gate: input":
                    return status
        return None

    probe.wait_for(lambda: gate_status() is not None and len(cmd) >= 5, STARTUP, "gate diagnostics and commands")
    status = gate_status()
    assert status.level == status.ERROR
    assert "libhidapi-hidraw0" in status.message or "no SpaceMouse found" in status.message
    assert latest(engaged).data is False
    assert all(m.twist.linear.x == m.twist.linear.y == m.twist.linear.z == 0.0 for m in cmd.messages)
    assert process.popen.poll() is None  # keeps running and retrying


@pytest.mark.parametrize(
    "parameters, message",
    [
        ({"input": "keyboard"}, "parameter 'input'='keyboard'"),
        ({"deadband": 0.5, "engage_threshold": 0.2}, "engage_threshold=0.2"),
        ({"axis_scale": [1.0, 1.0]}, "axis_scale needs 6 values"),
        ({"buttons.takeover": 40}, "buttons.takeover"),
        ({"input": "joy", "rate": 20.0, "idle_rate": 50.0}, "parameter 'idle_rate'=50.0 must be <= 'rate'=20.0"),
    ],
)
def test_bad_gate_parameter_stops_with_a_clear_message(graph, parameters, message):
    assert_stops_with(graph, gate_spec(**parameters), message)


HOSTILE_JOY = {
    "NaN axes": ([float("nan")] * 6, [0, 0, 0]),
    "infinite axes": ([float("inf"), -float("inf"), 0.0, 0.0, 0.0, 0.0], [0, 0, 0]),
    "3e38 on an axis": ([3e38, 0.0, 0.0, 0.0, 0.0, 0.0], [0, 0, 0]),
    "five axes": ([0.9] * 5, [0, 0, 0]),
    "100000 buttons, none pressed": ([0.0] * 6, [0] * 100_000),
}


def test_hostile_joy_messages_are_logged_and_the_gate_stays_released_and_zero(probe, graph):
    process = graph.start(gate_spec(input="joy"))
    cmd = probe.collect(TwistStamped, "human/cmd", COMMAND_QOS)
    engaged = probe.collect(Bool, "human/engaged", LATCHED_QOS)
    joy = JoyStream(probe)
    probe.wait_for(lambda: engaged.messages and len(cmd) > 0, STARTUP, "the gate's first command")
    start = len(cmd)
    for kind, (axes, buttons) in HOSTILE_JOY.items():  # each for eight commands (at idle_rate: 0.4 s, beyond engage_time)
        joy.axes, joy.buttons = axes, buttons
        seen = len(cmd)
        probe.wait_for(lambda: len(cmd) >= seen + 8, 10.0, f"commands while the joy stream sends {kind}")  # noqa: B023
    assert process.popen.poll() is None
    assert not any(m.data for m in engaged.messages), "a corrupt report engaged the gate"
    twists = [m.twist for m in cmd.messages[start:]]
    assert all((t.linear.x, t.linear.y, t.linear.z, t.angular.x, t.angular.y, t.angular.z) == (0.0,) * 6 for t in twists)
    log = process.log_path.read_text()
    assert "corrupt axis values (x=nan" in log and "spacenav/joy has 5 axes" in log, log[-2000:]
    assert log.count("corrupt axis values") < 10, "throttled: at most one line per 2 s (the 50 Hz stream would log dozens)"
    joy.axes, joy.buttons = [0.8, 0.0, 0.0, 0.0, 0.0, 0.0], [0, 0, 0]  # and a real deflection still takes over
    probe.wait_for(lambda: latest(engaged).data, 10.0, "engagement by a real deflection")
