"""`iil-robot doctor --servo`: the comparison of MoveIt Servo's parameters with the mux's, without ROS."""
from __future__ import annotations

import pytest

from iil_robot.cli.servo_check import MuxSide, check_servo, mux_side, resolve_topic
from iil_robot.config.profiles import load_profile

MUX = MuxSide("/servo_node/delta_twist_cmds", rate=20.0, policy_timeout=0.25, source="test")
GOOD = {"moveit_servo.incoming_command_timeout": 0.1, "moveit_servo.command_in_type": "speed_units",
        "moveit_servo.cartesian_command_in_topic": "~/delta_twist_cmds"}


def statuses(servo) -> dict[str, str]:
    return {c.name: c.status for c in check_servo("/servo_node", servo, MUX)}


def test_a_servo_configured_for_the_mux_passes_and_names_both_timeouts_together():
    checks = check_servo("/servo_node", GOOD, MUX)
    assert [c.status for c in checks] == ["ok", "ok", "ok"]
    timeout = next(c for c in checks if c.name == "servo timeout")
    assert "halts after 0.1 s" in timeout.detail and "every 0.05 s" in timeout.detail and "0.25 s after" in timeout.detail


@pytest.mark.parametrize("change, name, status, words", [
    ({"moveit_servo.command_in_type": "unitless"}, "servo command type", "fail", "would read the mux's m/s"),
    ({"moveit_servo.incoming_command_timeout": 0.05}, "servo timeout", "fail", "halts between two commands"),
    ({"moveit_servo.incoming_command_timeout": 0.08}, "servo timeout", "warn", "one late tick"),
    ({"moveit_servo.incoming_command_timeout": 2.0}, "servo timeout", "warn", "keeps the arm going 2 s"),
    ({"moveit_servo.cartesian_command_in_topic": "/other/cmds"}, "servo command topic", "fail", "the mux publishes on"),
])
def test_a_wrong_servo_parameter_is_named(change, name, status, words):
    check = next(c for c in check_servo("/servo_node", {**GOOD, **change}, MUX) if c.name == name)
    assert check.status == status and words in check.detail and check.fix


def test_a_silent_node_or_one_without_servo_parameters_fails():
    assert statuses(None) == {"servo node": "fail"}
    assert statuses({"use_sim_time": False}) == {"servo node": "fail"}


@pytest.mark.parametrize("topic, node, resolved", [
    ("~/delta_twist_cmds", "/servo_node", "/servo_node/delta_twist_cmds"),
    ("~/delta_twist_cmds", "arm/servo_node", "/arm/servo_node/delta_twist_cmds"),
    ("delta_twist_cmds", "/arm/servo_node", "/arm/delta_twist_cmds"),
    ("delta_twist_cmds", "/servo_node", "/delta_twist_cmds"),
    ("/abs/cmds", "/servo_node", "/abs/cmds"),
])
def test_topics_resolve_as_ros_does(topic, node, resolved):
    assert resolve_topic(topic, node) == resolved


def test_the_mux_side_comes_from_a_running_mux_or_else_the_parameter_files():
    panda = load_profile("panda")
    files = mux_side(panda, None)
    assert files.topic == "/servo_node/delta_twist_cmds" and files.rate == 20.0 and files.policy_timeout == 0.25
    running = mux_side(panda, {"rate": 50.0, "topics.policy.timeout": 0.1})
    assert (running.rate, running.policy_timeout, running.source) == (50.0, 0.1, "the running /mux")
    assert mux_side(load_profile("fetch"), None).topic == "/arm/cmd"
