"""The human gate: axis mapping and every transition of the engagement state machine."""
import math

import pytest

from iil_robot.command.gate import ButtonMap, Gate, GateConfig, GateConfigError, apply_deadband

REST = (0.0,) * 6
NO_BUTTONS = (0, 0)


def push(x=0.0, y=0.0, z=0.0, roll=0.0, pitch=0.0, yaw=0.0):
    return (x, y, z, roll, pitch, yaw)


# -- axis mapping: table of device input -> command ------------------------------------------

@pytest.mark.parametrize(
    "config, axes, expected",
    [
        # inside the deadband: nothing
        (GateConfig(deadband=0.1), push(x=0.1), (0.0,) * 6),
        # full deflection: the axis scale (m/s)
        (GateConfig(deadband=0.1), push(x=1.0), (0.25, 0, 0, 0, 0, 0)),
        # rescaled after the deadband: halfway between deadband and full
        (GateConfig(deadband=0.2), push(y=-0.6), (0, -0.125, 0, 0, 0, 0)),
        # translation mode ignores rotation axes
        (GateConfig(), push(roll=1.0, yaw=-1.0), (0.0,) * 6),
        # 6-DoF mode passes them, scaled in rad/s
        (GateConfig(active_axes="6dof"), push(roll=1.0, yaw=-1.0), (0, 0, 0, 0.8, 0, -0.8)),
        # per-axis sign and scale
        (GateConfig(axis_sign=(-1, 1, 1, 1, 1, 1), axis_scale=(0.1, 0.2, 0.3, 1, 1, 1)), push(1, 1, 1),
         (-0.1, 0.2, 0.3, 0, 0, 0)),
        # out-of-range deflection is capped at full scale
        (GateConfig(deadband=0.0), push(z=1.7), (0, 0, 0.25, 0, 0, 0)),
        # a corrupt (NaN) axis counts as zero
        (GateConfig(), push(x=math.nan, y=1.0), (0, 0.25, 0, 0, 0, 0)),
        # so does one ten times beyond full deflection (no hand does that), and an infinite one
        (GateConfig(), push(x=3e38, y=-math.inf, z=1.0), (0, 0, 0.25, 0, 0, 0)),
    ],
)
def test_axis_mapping_table(config, axes, expected):
    out = Gate(config).update(axes, NO_BUTTONS, now=0.0)
    assert out.twist == pytest.approx(expected)


# -- operator frames: push the cap away from you and the arm moves away from you -------------

HALF_TURN_ABOUT_X = (1.0, 0.0, 0.0, 0.0)  # quaternion (x, y, z, w): a tool pointing down
QUARTER_TURN_ABOUT_Z = (0.0, 0.0, math.sqrt(0.5), math.sqrt(0.5))


@pytest.mark.parametrize(
    "yaw, axes, expected",
    [
        (0.0, push(x=1.0), (0.25, 0, 0, 0, 0, 0)),  # behind the robot: away is +x
        (180.0, push(x=1.0), (-0.25, 0, 0, 0, 0, 0)),  # facing the robot: away from you is -x
        (90.0, push(x=1.0), (0, 0.25, 0, 0, 0, 0)),  # on its right looking along +y
        (90.0, push(y=1.0), (-0.25, 0, 0, 0, 0, 0)),  # ... and left of you is -x
        (-90.0, push(x=1.0, z=1.0), (0, -0.25, 0.25, 0, 0, 0)),  # up stays up
        (180.0, push(yaw=1.0, roll=1.0), (0, 0, 0, -0.8, 0, 0.8)),  # rotations turn with the axes
    ],
)
def test_base_operator_frame_turns_the_device_by_where_the_operator_stands(yaw, axes, expected):
    out = Gate(GateConfig(deadband=0.0, active_axes="6dof", operator_yaw=yaw)).update(axes, NO_BUTTONS, now=0.0)
    assert out.twist == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(
    "orientation, axes, expected",
    [
        (HALF_TURN_ABOUT_X, push(x=1.0), (0.25, 0, 0, 0, 0, 0)),  # tool x is base x
        (HALF_TURN_ABOUT_X, push(z=1.0), (0, 0, -0.25, 0, 0, 0)),  # tool z points down: "up" moves down the tool axis
        (QUARTER_TURN_ABOUT_Z, push(x=1.0), (0, 0.25, 0, 0, 0, 0)),  # tool turned 90 degrees: its x is base y
        (QUARTER_TURN_ABOUT_Z, push(pitch=1.0), (0, 0, 0, -0.8, 0, 0)),
    ],
)
def test_tool_operator_frame_moves_along_the_end_effector_axes(orientation, axes, expected):
    gate = Gate(GateConfig(deadband=0.0, active_axes="6dof", operator_frame="tool"))
    assert gate.tool_orientation(orientation, now=0.0) is None
    assert gate.update(axes, NO_BUTTONS, now=0.05).twist == pytest.approx(expected, abs=1e-12)


def test_tool_operator_frame_without_a_fresh_orientation_commands_zero_and_says_why():
    gate = Gate(GateConfig(operator_frame="tool", tool_pose_timeout=0.2))
    out = gate.update(push(x=1.0), NO_BUTTONS, now=0.0)
    assert out.twist == (0.0,) * 6 and "ee_pose" in out.frame_error
    gate.tool_orientation(HALF_TURN_ABOUT_X, now=0.0)
    assert gate.update(push(x=1.0), NO_BUTTONS, now=0.1).twist[0] > 0.0
    assert gate.update(push(x=1.0), NO_BUTTONS, now=0.3).twist == (0.0,) * 6  # stale


def test_a_malformed_tool_orientation_is_refused_and_drops_the_old_one():
    gate = Gate(GateConfig(operator_frame="tool"))
    gate.tool_orientation(HALF_TURN_ABOUT_X, now=0.0)
    assert "zero length" in gate.tool_orientation((0.0, 0.0, 0.0, 0.0), now=0.01)
    assert gate.update(push(x=1.0), NO_BUTTONS, now=0.02).twist == (0.0,) * 6


def test_axis_sign_mirrors_the_device_axis_before_the_rotation():
    gate = Gate(GateConfig(deadband=0.0, axis_sign=(-1, 1, 1, 1, 1, 1), operator_yaw=90.0))
    assert gate.update(push(x=1.0), NO_BUTTONS, now=0.0).twist == pytest.approx((0, -0.25, 0, 0, 0, 0), abs=1e-12)


def test_a_corrupt_axis_never_engages():
    gate = Gate(GateConfig(engage_time=0.0))
    assert not gate.update(push(x=1e30), NO_BUTTONS, now=0.0).engaged
    assert not gate.update(push(x=math.inf), NO_BUTTONS, now=0.1).engaged
    assert gate.update(push(x=1.0), NO_BUTTONS, now=0.2).engaged


def test_deadband_is_continuous_at_its_edge():
    assert apply_deadband(0.1000001, 0.1) == pytest.approx(0.0, abs=1e-5)
    assert apply_deadband(-1.0, 0.1) == -1.0


# -- engagement by deflection -----------------------------------------------------------------

def test_deflection_above_threshold_engages_on_that_same_update():
    gate = Gate(GateConfig(engage_threshold=0.3, engage_time=0.0))
    assert not gate.update(push(x=0.29), NO_BUTTONS, 0.0).engaged
    out = gate.update(push(x=0.31), NO_BUTTONS, 0.01)
    assert out.engaged and out.engaged_changed and "deflection" in out.reason


def test_deflection_must_persist_for_engage_time():
    gate = Gate(GateConfig(engage_threshold=0.3, engage_time=0.1))
    assert not gate.update(push(x=0.5), NO_BUTTONS, 0.00).engaged  # arming
    assert not gate.update(push(x=0.5), NO_BUTTONS, 0.05).engaged
    out = gate.update(push(x=0.5), NO_BUTTONS, 0.10)
    assert out.engaged and out.engaged_changed


def test_a_dip_below_threshold_restarts_the_engage_timer():
    gate = Gate(GateConfig(engage_threshold=0.3, engage_time=0.1))
    gate.update(push(x=0.5), NO_BUTTONS, 0.00)
    gate.update(push(x=0.2), NO_BUTTONS, 0.05)  # dip: disarmed
    assert not gate.update(push(x=0.5), NO_BUTTONS, 0.10).engaged
    assert gate.update(push(x=0.5), NO_BUTTONS, 0.20).engaged


def test_release_after_release_time_inside_the_deadband():
    gate = Gate(GateConfig(deadband=0.1, release_time=0.5))
    gate.update(push(x=1.0), NO_BUTTONS, 0.0)
    assert gate.update(REST, NO_BUTTONS, 0.1).engaged
    assert gate.update(REST, NO_BUTTONS, 0.49).engaged
    out = gate.update(REST, NO_BUTTONS, 0.5)
    assert not out.engaged and out.engaged_changed and "released" in out.reason


def test_no_chatter_between_deadband_and_threshold():
    """Once engaged, a hand hovering between deadband and threshold keeps control."""
    gate = Gate(GateConfig(deadband=0.1, engage_threshold=0.3, release_time=0.2))
    gate.update(push(x=0.5), NO_BUTTONS, 0.0)
    for i in range(1, 50):
        out = gate.update(push(x=0.15 if i % 2 else 0.25), NO_BUTTONS, i * 0.1)
        assert out.engaged and not out.engaged_changed


def test_moving_again_during_release_keeps_control():
    gate = Gate(GateConfig(release_time=0.5))
    gate.update(push(x=1.0), NO_BUTTONS, 0.0)
    gate.update(REST, NO_BUTTONS, 0.4)
    gate.update(push(y=0.5), NO_BUTTONS, 0.45)  # moved again: release timer restarts
    assert gate.update(REST, NO_BUTTONS, 0.9).engaged
    assert not gate.update(REST, NO_BUTTONS, 0.96).engaged


def test_zero_release_time_releases_on_the_first_rest_sample():
    gate = Gate(GateConfig(release_time=0.0))
    gate.update(push(x=1.0), NO_BUTTONS, 0.0)
    assert not gate.update(REST, NO_BUTTONS, 0.0).engaged


# -- takeover button --------------------------------------------------------------------------

def test_hold_mode_engages_while_held_and_releases_after_release_time():
    gate = Gate(GateConfig(takeover_mode="hold", buttons=ButtonMap(takeover=1), release_time=0.3))
    out = gate.update(REST, (0, 1), 0.0)
    assert out.engaged and out.reason == "takeover button"
    assert gate.update(REST, (0, 1), 5.0).engaged  # held with the stick at rest: still the operator's
    assert gate.update(REST, (0, 0), 5.1).engaged  # let go: release timer runs from the last hold
    assert not gate.update(REST, (0, 0), 5.31).engaged


def test_toggle_mode_latches_and_unlatches():
    gate = Gate(GateConfig(takeover_mode="toggle", buttons=ButtonMap(takeover=1), release_time=0.2))
    assert gate.update(REST, (0, 1), 0.0).engaged  # press
    assert gate.update(REST, (0, 0), 0.1).engaged  # released button, still latched
    assert gate.update(REST, (0, 0), 10.0).engaged  # latched indefinitely
    assert gate.update(REST, (0, 1), 10.1).engaged  # press again: unlatch, release timer starts
    assert gate.update(REST, (0, 0), 10.2).engaged
    assert not gate.update(REST, (0, 0), 10.3).engaged


def test_no_takeover_button_means_deflection_only():
    gate = Gate(GateConfig(buttons=ButtonMap(takeover=-1, gripper_toggle=-1)))
    assert not gate.update(REST, (1, 1), 0.0).engaged


# -- device loss ------------------------------------------------------------------------------

def test_device_lost_mid_intervention_zeroes_and_disengages_at_once():
    gate = Gate(GateConfig(takeover_mode="toggle"))
    gate.update(push(x=1.0), (0, 1), 0.0)
    out = gate.device_lost()
    assert out.twist == (0.0,) * 6
    assert not out.engaged and out.engaged_changed and out.reason == "device lost"
    # after reconnect the latch is gone: resting input does not re-engage
    assert not gate.update(REST, NO_BUTTONS, 1.0).engaged


def test_device_lost_while_idle_reports_no_change():
    out = Gate(GateConfig()).device_lost()
    assert not out.engaged and not out.engaged_changed


# -- buttons: gripper and episode events ------------------------------------------------------

def test_gripper_toggle_flips_on_each_press_edge_only():
    gate = Gate(GateConfig(buttons=ButtonMap(gripper_toggle=0, takeover=1)))
    first = gate.update(REST, (1, 0), 0.0)
    assert first.gripper == 1.0 and first.gripper_changed
    held = gate.update(REST, (1, 0), 0.1)
    assert held.gripper == 1.0 and not held.gripper_changed
    gate.update(REST, (0, 0), 0.2)
    assert gate.update(REST, (1, 0), 0.3).gripper == 0.0


def test_gripper_button_engages_the_operator():
    gate = Gate(GateConfig(buttons=ButtonMap(gripper_toggle=0, takeover=1), release_time=0.5))
    out = gate.update(REST, (1, 0), 0.0)
    assert out.engaged and out.reason == "gripper button" and out.gripper == 1.0
    assert gate.update(REST, (0, 0), 0.4).engaged
    assert not gate.update(REST, (0, 0), 0.51).engaged


def test_gripper_open_and_close_buttons():
    gate = Gate(GateConfig(buttons=ButtonMap(gripper_toggle=-1, takeover=-1, gripper_open=0, gripper_close=1)))
    assert gate.update(REST, (0, 1), 0.0).gripper == 1.0
    assert gate.update(REST, (1, 0), 0.1).gripper == 0.0


def test_episode_buttons_emit_events_on_press():
    buttons = ButtonMap(takeover=-1, gripper_toggle=-1, success=0, failure=1, reset=2)
    gate = Gate(GateConfig(buttons=buttons))
    assert gate.update(REST, (1, 0, 0), 0.0).events == ("success",)
    assert gate.update(REST, (1, 1, 1), 0.1).events == ("failure", "reset")
    assert gate.update(REST, (1, 1, 1), 0.2).events == ()


def test_missing_buttons_are_reported():
    gate = Gate(GateConfig(buttons=ButtonMap(takeover=1, gripper_toggle=0, reset=5)))
    assert gate.missing_buttons(2) == {"reset": 5}


# -- configuration errors ---------------------------------------------------------------------

@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(deadband=1.0), "deadband"),
        (dict(deadband=0.3, engage_threshold=0.2), "engage_threshold"),
        (dict(axis_scale=(1, 1, 1)), "axis_scale needs 6"),
        (dict(axis_scale=(-1, 1, 1, 1, 1, 1)), "axis_sign to flip"),
        (dict(axis_sign=(2, 1, 1, 1, 1, 1)), "axis_sign"),
        (dict(operator_frame="world"), "operator_frame"),
        (dict(operator_yaw=math.nan), "operator_yaw"),
        (dict(active_axes="xyz"), "active_axes"),
        (dict(takeover_mode="press"), "takeover_mode"),
        (dict(release_time=-1.0), "release_time"),
        (dict(buttons=ButtonMap(takeover=0, gripper_toggle=0)), "button 0 is mapped to both"),
    ],
)
def test_bad_configuration_is_refused_with_the_parameter_named(kwargs, match):
    with pytest.raises(GateConfigError, match=match):
        GateConfig(**kwargs)


def test_wrong_axis_count_is_an_error():
    with pytest.raises(ValueError, match="expected 6 axes"):
        Gate(GateConfig()).update((0.0,) * 3, NO_BUTTONS, 0.0)
