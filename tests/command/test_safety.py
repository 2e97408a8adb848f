"""Safety limits on the arm command."""
import math

import pytest

from iil_robot.command.safety import (
    ZERO,
    Limits,
    LimitsConfigError,
    WorkspaceBox,
    limit_acceleration,
    limit_velocity,
    limit_workspace,
)

LIMITS = Limits(max_linear_speed=0.2, max_angular_speed=1.0, max_linear_accel=1.0, max_angular_accel=4.0)


@pytest.mark.parametrize(
    "twist, expected",
    [
        ((0.1, 0, 0, 0, 0, 0), (0.1, 0, 0, 0, 0, 0)),  # under the limit: unchanged
        ((0.3, 0.4, 0, 0, 0, 0), (0.12, 0.16, 0, 0, 0, 0)),  # norm 0.5 -> 0.2, direction kept
        ((0, 0, 0, 0, 0, -3.0), (0, 0, 0, 0, 0, -1.0)),  # angular part limited on its own
        ((1.0, 0, 0, 0, 2.0, 0), (0.2, 0, 0, 0, 1.0, 0)),
    ],
)
def test_velocity_limit_table(twist, expected):
    assert limit_velocity(twist, LIMITS) == pytest.approx(expected)


def test_acceleration_limit_bounds_the_change_per_period():
    out = limit_acceleration((0.2, 0, 0, 0, 0, 0), ZERO, dt=0.05, limits=LIMITS)
    assert out == pytest.approx((0.05, 0, 0, 0, 0, 0))  # 1 m/s^2 * 50 ms


def test_a_change_within_the_acceleration_limit_passes_exactly():
    previous = (0.049, 0.0013, 0.0, 0.0, 0.0, 0.0)
    target = (0.0498458666866564, 0.0039229547863922475, 0.0, 0.0, 0.0, 0.0)
    assert limit_acceleration(target, previous, dt=0.05, limits=LIMITS) == target


def test_acceleration_limit_never_delays_a_stop():
    assert limit_acceleration(ZERO, (0.2, 0, 0, 0, 0, 1.0), dt=0.001, limits=LIMITS) == ZERO


def test_acceleration_limit_applies_to_direction_reversal():
    out = limit_acceleration((-0.2, 0, 0, 0, 0, 0), (0.2, 0, 0, 0, 0, 0), dt=0.1, limits=LIMITS)
    assert out == pytest.approx((0.1, 0, 0, 0, 0, 0))


def test_zero_accel_disables_the_acceleration_limit():
    limits = Limits(max_linear_accel=0.0, max_angular_accel=0.0)
    assert limit_acceleration((0.2, 0, 0, 0, 0, 0.5), ZERO, dt=0.001, limits=limits) == (0.2, 0, 0, 0, 0, 0.5)


BOX = WorkspaceBox(enabled=True, min_xyz=(0.0, -0.5, 0.1), max_xyz=(0.8, 0.5, 0.9))


@pytest.mark.parametrize(
    "position, twist, expected",
    [
        ((0.4, 0.0, 0.5), (0.1, 0.1, 0.1, 0, 0, 0.3), (0.1, 0.1, 0.1, 0, 0, 0.3)),  # inside: unchanged
        ((0.8, 0.0, 0.5), (0.1, 0.1, 0, 0, 0, 0), (0.0, 0.1, 0, 0, 0, 0)),  # on +x wall: no further +x
        ((0.9, 0.0, 0.5), (-0.1, 0, 0, 0, 0, 0), (-0.1, 0, 0, 0, 0, 0)),  # outside: moving back in is allowed
        ((0.4, 0.0, 0.05), (0, 0, -0.2, 0, 0, 0), (0, 0, 0.0, 0, 0, 0)),  # below the floor: no further down
    ],
)
def test_workspace_box_table(position, twist, expected):
    assert limit_workspace(twist, position, BOX) == pytest.approx(expected)


@pytest.mark.parametrize(
    "limits, match",
    [
        (Limits(max_linear_speed=0.0), "max_linear_speed"),
        (Limits(max_angular_speed=math.inf), "max_angular_speed"),
        (Limits(max_linear_accel=-1.0), "max_linear_accel"),
        (Limits(workspace=WorkspaceBox(min_xyz=(0, 0, 0), max_xyz=(1, 0, 1))), "must be below"),
        (Limits(workspace=WorkspaceBox(pose_timeout=0.0)), "pose_timeout"),
    ],
)
def test_bad_limits_are_refused(limits, match):
    with pytest.raises(LimitsConfigError, match=match):
        limits.validate()
