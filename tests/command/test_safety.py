"""Safety limits on the arm command."""
import math

import numpy as np
import pytest

from iil_robot.command.safety import (
    ZERO,
    Limits,
    LimitsConfigError,
    WorkspaceBox,
    brake_speed,
    limit_acceleration,
    limit_velocity,
    limit_workspace,
    past_orientation_limit,
)
from iil_robot.data.rotation import IDENTITY, yaw_matrix

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


BOX = WorkspaceBox(enabled=True, min_xyz=(0.0, -0.5, 0.1), max_xyz=(0.8, 0.5, 0.9), linear_decel=1.0)
UPRIGHT = IDENTITY


@pytest.mark.parametrize(
    "position, twist, expected",
    [
        ((0.4, 0.0, 0.5), (0.1, 0.1, 0.1, 0, 0, 0.3), (0.1, 0.1, 0.1, 0, 0, 0.3)),  # far inside: unchanged
        ((0.8, 0.0, 0.5), (0.1, 0.1, 0, 0, 0, 0), (0.0, 0.1, 0, 0, 0, 0)),  # on +x wall: no further +x, sliding along it
        ((0.9, 0.0, 0.5), (-0.1, 0, 0, 0, 0, 0), (-0.1, 0, 0, 0, 0, 0)),  # outside: moving back in is allowed
        ((0.4, 0.0, 0.05), (0, 0, -0.2, 0, 0, 0), (0, 0, 0.0, 0, 0, 0)),  # below the floor: no further down
        ((0.79, 0.0, 0.5), (0.2, 0, 0, 0, 0, 0), (math.sqrt(0.02), 0, 0, 0, 0, 0)),  # 1 cm before it: v^2 / 2a = d
        ((0.01, 0.0, 0.5), (-0.2, 0, 0, 0, 0, 0), (-math.sqrt(0.02), 0, 0, 0, 0, 0)),  # the same towards the low wall
        ((0.79, 0.0, 0.5), (-0.2, 0, 0, 0, 0, 0), (-0.2, 0, 0, 0, 0, 0)),  # away from the near wall: unchanged
    ],
)
def test_workspace_box_table(position, twist, expected):
    assert limit_workspace(twist, position, UPRIGHT, BOX, latency=0.0) == pytest.approx(expected)


@pytest.mark.parametrize("distance, decel, latency", [(0.01, 1.0, 0.0), (0.05, 2.0, 0.05), (0.2, 0.5, 0.1), (1e-4, 1.0, 0.05)])
def test_brake_speed_stops_exactly_at_the_distance(distance, decel, latency):
    v = brake_speed(distance, decel, latency)
    assert v > 0.0
    assert v * v / (2 * decel) + v * latency == pytest.approx(distance)


@pytest.mark.parametrize("distance", [0.0, -0.01])
def test_brake_speed_is_zero_on_or_past_the_limit(distance):
    assert brake_speed(distance, 1.0, 0.05) == 0.0


def test_latency_brakes_earlier():
    assert brake_speed(0.05, 1.0, 0.1) < brake_speed(0.05, 1.0, 0.0)


def _rpy(roll, pitch, yaw):
    c = math.cos
    s = math.sin
    rx = np.array([[1, 0, 0], [0, c(roll), -s(roll)], [0, s(roll), c(roll)]])
    ry = np.array([[c(pitch), 0, s(pitch)], [0, 1, 0], [-s(pitch), 0, c(pitch)]])
    return yaw_matrix(yaw) @ ry @ rx


TILT = WorkspaceBox(enabled=True, min_rpy=(math.pi - 0.3, -0.3, -math.pi), max_rpy=(math.pi, 0.3, math.pi), angular_decel=4.0)
"""A tool pointing down (|roll| near pi), tilting at most 0.3 rad about x and y, any yaw: hil-serl's kind of limit."""


@pytest.mark.parametrize(
    "rpy, angular, factor",
    [
        ((math.pi, 0.0, 0.0), (0.0, 0.0, 2.0), 1.0),  # yaw is free
        ((math.pi, 0.0, 1.0), (0.5, 0.0, 0.0), 1.0),  # far from the tilt limits
        ((math.pi - 0.3, 0.0, 0.0), (-0.5, 0.0, 0.0), 0.0),  # |roll| at its low limit, tilting further: stopped
        ((-(math.pi - 0.3), 0.0, 0.0), (0.5, 0.0, 0.0), 0.0),  # the same on the other side of +-pi
        ((math.pi - 0.3, 0.0, 0.0), (0.5, 0.0, 0.0), 1.0),  # rolling back towards pi: free
        ((-(math.pi - 0.3), 0.0, 0.0), (-0.5, 0.0, 0.0), 1.0),  # ... and through it: |roll| wraps at pi, no limit there
        ((math.pi, 0.3, 0.0), (0.0, 0.5, 0.0), 0.0),  # pitch at its high limit, pitching further: stopped
        ((math.pi, 0.3, 0.0), (0.0, -0.5, 0.0), 1.0),  # pitching back: free
        ((math.pi, 0.0, 0.0), (0.0, 0.0, 0.0), 1.0),
    ],
)
def test_orientation_limit_table(rpy, angular, factor):
    out = limit_workspace((0, 0, 0) + angular, (0.4, 0.0, 0.5), _rpy(*rpy), TILT, latency=0.0)
    assert out[3:] == pytest.approx(tuple(w * factor for w in angular), abs=1e-6)


def test_orientation_braking_slows_towards_the_limit():
    angular = (0.0, 0.0, 0.0, -2.0, 0.0, 0.0)
    near = limit_workspace(angular, (0.4, 0.0, 0.5), _rpy(math.pi - 0.29, 0.0, 0.0), TILT, latency=0.0)
    far = limit_workspace(angular, (0.4, 0.0, 0.5), _rpy(math.pi - 0.1, 0.0, 0.0), TILT, latency=0.0)
    assert 0.0 < abs(near[3]) < abs(far[3]) < 2.0
    assert abs(near[3]) == pytest.approx(brake_speed(0.01, 4.0, 0.0), rel=1e-3)


@pytest.mark.parametrize(
    "rpy, past",
    [
        ((math.pi, 0.0, 2.0), -0.3),  # pointing down: 0.3 from every tilt limit; yaw is not limited
        ((-(math.pi - 0.1), 0.0, 0.0), -0.2),  # |roll| 0.2 above its limit, either side of +-pi
        ((math.pi - 0.35, 0.0, 0.0), 0.05),  # tilted past |roll|'s limit
        ((math.pi, -0.4, 0.0), 0.1),  # past pitch's low limit
    ],
)
def test_past_orientation_limit_is_signed_distance_to_the_nearest_limit(rpy, past):
    assert past_orientation_limit(_rpy(*rpy), TILT) == pytest.approx(past, abs=1e-9)


def test_past_orientation_limit_without_limits_is_minus_infinity():
    assert past_orientation_limit(IDENTITY, WorkspaceBox(enabled=True)) == -math.inf


@pytest.mark.parametrize(
    "limits, match",
    [
        (Limits(max_linear_speed=0.0), "max_linear_speed"),
        (Limits(max_angular_speed=math.inf), "max_angular_speed"),
        (Limits(max_linear_accel=-1.0), "max_linear_accel"),
        (Limits(workspace=WorkspaceBox(min_xyz=(0, 0, 0), max_xyz=(1, 0, 1))), "must be below"),
        (Limits(workspace=WorkspaceBox(pose_timeout=0.0)), "pose_timeout"),
        (Limits(workspace=WorkspaceBox(min_rpy=(0.0, 0.3, -1.0), max_rpy=(3.0, 0.2, 1.0))), "pitch range"),
        (Limits(workspace=WorkspaceBox(min_rpy=(-0.5, -0.3, -1.0), max_rpy=(3.0, 0.3, 1.0))), "roll"),
        (Limits(workspace=WorkspaceBox(linear_decel=0.0)), "linear_decel"),
        (Limits(workspace=WorkspaceBox(latency=math.nan)), "latency"),
    ],
)
def test_bad_limits_are_refused(limits, match):
    with pytest.raises(LimitsConfigError, match=match):
        limits.validate()
