"""The gripper's closure -> driver goal logic, without ROS: hysteresis, change detection, goal fields."""
from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from iil_robot.command.gripper import (
    Gripper,
    GripperConfig,
    GripperConfigError,
    GripperTarget,
    fill_franka_grasp,
    fill_franka_move,
    fill_gripper_command,
    grasped,
)

BINARY = GripperConfig(output="gripper_command", mode="binary", open_position=0.0, closed_position=0.8, max_effort=50.0)


def sends(gripper: Gripper, closures) -> list[float | None]:
    """The closure of each goal sent (None: nothing sent), marking every one as sent."""
    out = []
    for c in closures:
        target = gripper.update(c)
        if target is not None:
            gripper.sent(target)
        out.append(None if target is None else target.closure)
    return out


@pytest.mark.parametrize("closures, expected", [
    ([0.0, 0.0, 0.0], [0.0, None, None]),  # the first goal always goes, then nothing while it holds
    ([0.0, 0.5, 0.59, 0.6, 0.7], [0.0, None, None, 1.0, None]),  # closes at close_above, once
    ([1.0, 0.5, 0.41, 0.4, 0.1], [1.0, None, None, 0.0, None]),  # opens at open_below, once
    ([0.0, 0.61, 0.55, 0.62, 0.45, 0.61], [0.0, 1.0, None, None, None, None]),  # chatter in the band: no goals
    ([0.5], [0.0]),  # starts open when in the band
])
def test_binary_mode_sends_a_goal_only_when_the_hysteresis_flips(closures, expected):
    assert sends(Gripper(BINARY), closures) == expected


def test_continuous_mode_sends_once_the_closure_moved_by_min_change():
    gripper = Gripper(GripperConfig(mode="continuous", min_change=0.1, open_position=0.05, closed_position=0.0))
    assert sends(gripper, [0.0, 0.05, 0.09, 0.1, 0.15, 0.25]) == [0.0, None, None, 0.1, None, 0.25]
    assert gripper.last_sent.position == pytest.approx(0.05 * 0.75)


def test_an_unsent_goal_is_offered_again_until_marked_sent():
    gripper = Gripper(BINARY)
    first = gripper.update(1.0)
    assert gripper.update(1.0) == first  # the action server was not up: still to send
    gripper.sent(first)
    assert gripper.update(1.0) is None
    gripper.forget()  # rejected by the driver
    assert gripper.update(1.0) == first


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_a_non_finite_closure_keeps_the_current_target(bad):
    gripper = Gripper(BINARY)
    gripper.sent(gripper.update(1.0))
    assert gripper.update(bad) is None
    assert gripper.target(bad).closure == 1.0


def test_out_of_range_closures_are_clipped():
    gripper = Gripper(GripperConfig(mode="continuous", open_position=0.0, closed_position=0.8))
    assert gripper.target(-3.0) == GripperTarget(0.0, 0.0)
    assert gripper.target(7.0).position == pytest.approx(0.8)


# -- goals, filled into stand-ins with the fields of the real action types ------------------------

def gripper_command_goal():  # control_msgs/action/GripperCommand.Goal: command (GripperCommand: position, max_effort)
    return SimpleNamespace(command=SimpleNamespace(position=None, max_effort=None))


def test_gripper_command_goal_carries_the_driver_position_and_effort():
    goal = fill_gripper_command(gripper_command_goal(), Gripper(BINARY).target(1.0), BINARY)
    assert (goal.command.position, goal.command.max_effort) == (pytest.approx(0.8), 50.0)


def test_franka_grasp_closes_on_any_object_up_to_the_open_width_and_move_opens():
    config = GripperConfig(output="franka", mode="binary", open_position=0.08, closed_position=0.0, max_effort=40.0,
                           speed=0.1, epsilon=0.005)
    grasp = fill_franka_grasp(SimpleNamespace(width=None, speed=None, force=None,
                                              epsilon=SimpleNamespace(inner=None, outer=None)), config)
    assert (grasp.width, grasp.epsilon.inner, grasp.epsilon.outer, grasp.speed, grasp.force) == \
        (0.0, 0.005, pytest.approx(0.08), 0.1, 40.0)
    move = fill_franka_move(SimpleNamespace(width=None, speed=None), config)
    assert (move.width, move.speed) == (0.08, 0.1)


@pytest.mark.parametrize("output, closure, result, held", [
    ("gripper_command", 1.0, SimpleNamespace(stalled=True, reached_goal=False), True),  # stopped on an object
    ("gripper_command", 1.0, SimpleNamespace(stalled=False, reached_goal=True), False),  # closed on nothing
    ("gripper_command", 0.0, SimpleNamespace(stalled=True, reached_goal=False), False),  # opening holds nothing
    ("franka", 1.0, SimpleNamespace(success=True), True),
    ("franka", 1.0, SimpleNamespace(success=False), False),
])
def test_grasp_state_comes_from_the_action_result(output, closure, result, held):
    assert grasped(output, GripperTarget(closure, 0.0), result) is held


@pytest.mark.parametrize("kwargs, match", [
    (dict(output="vacuum"), "gripper.output='vacuum'"),
    (dict(mode="half"), "gripper.mode='half'"),
    (dict(output="franka", mode="continuous"), "set gripper.mode=binary"),
    (dict(open_below=0.7, close_above=0.6), "open_below < close_above"),
    (dict(min_change=0.0), "gripper.min_change=0.0"),
    (dict(open_position=0.1, closed_position=0.1), "are equal"),
    (dict(max_effort=math.nan), "gripper.max_effort=nan"),
])
def test_bad_configuration_names_the_parameter(kwargs, match):
    with pytest.raises(GripperConfigError, match=match):
        GripperConfig(**kwargs)
