"""The workspace brakes for the commands still in flight: sent, but not yet seen in the end-effector pose."""
import math
from collections import deque

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iil_robot.command import in_flight
from iil_robot.command.in_flight import SentCommands
from iil_robot.command.mux import Mux, MuxConfig, SourceConfig
from iil_robot.command.safety import Limits, WorkspaceBox, limit_workspace, past_orientation_limit
from iil_robot.data.records import Proposal
from iil_robot.data.rotation import IDENTITY, matrix_from_quaternion
from iil_robot.sim.rotation import integrate

RATE = 20.0
DT = 1.0 / RATE
POLICY = SourceConfig("policy", "policy", "policy/proposal", timeout=0.25, priority=10)
X = (1.0, 0.0, 0.0, 0.0, 0.0, 0.0)


# -- the history of sent commands ----------------------------------------------------------------

@pytest.mark.parametrize(
    "sent, now, window, expected",
    [
        ([(0.0, X)], 0.2, 0.5, 0.2),  # one command, held until now
        ([(0.0, X)], 0.2, 0.05, 0.05),  # only the window's part of it
        ([(0.0, X), (0.1, (2.0, 0, 0, 0, 0, 0))], 0.25, 0.2, 0.05 + 0.3),  # each held until the next
        ([(0.0, X), (0.1, (0.0,) * 6)], 0.3, 0.25, 0.05),  # a stop ends the motion
        ([(0.0, X), (0.1, (-1.0, 0, 0, 0, 0, 0))], 0.2, 0.2, 0.0),  # forth and back
        ([], 1.0, 0.2, 0.0),  # nothing sent
    ],
)
def test_in_flight_integrates_each_command_held_until_the_next_over_the_window(sent, now, window, expected):
    commands = SentCommands()
    for time, twist in sent:
        commands.add(time, twist, keep=1.0)
    assert commands.in_flight(now, window)[0] == pytest.approx(expected)


def test_in_flight_turn_is_the_rotation_vector_of_the_commands():
    commands = SentCommands()
    commands.add(0.0, (0, 0, 0, 0.0, 0.0, 2.0), keep=1.0)
    commands.add(0.1, (0, 0, 0, 1.0, 0.0, 0.0), keep=1.0)
    assert commands.in_flight(0.2, 0.2) == pytest.approx((0, 0, 0, 0.1, 0.0, 0.2))


def test_forgetting_old_commands_keeps_every_window_up_to_keep():
    kept, everything = SentCommands(), SentCommands()
    for k in range(200):
        twist = (math.sin(k / 7), 0, 0, 0, 0, math.cos(k / 5))
        kept.add(k * DT, twist, keep=0.3)
        everything.add(k * DT, twist, keep=math.inf)
    assert len(kept._sent) <= 8
    for window in (0.05, 0.12, 0.3):
        assert kept.in_flight(10.0, window) == pytest.approx(everything.in_flight(10.0, window))


# -- limit_workspace with motion in flight -------------------------------------------------------

BOX = WorkspaceBox(enabled=True, min_xyz=(0.0, -0.5, 0.1), max_xyz=(0.8, 0.5, 0.9), linear_decel=1.0)
NEAR_X = (0.75, 0.0, 0.5)  # 5 cm before the +x wall


@pytest.mark.parametrize(
    "in_flight_x, twist_x, expected_x",
    [
        (0.0, 0.2, 0.2),  # 5 cm of room: 0.2 m/s brakes within 2 cm
        (0.04, 0.2, math.sqrt(0.02)),  # 4 cm still in flight: 1 cm of room left
        (0.06, 0.2, 0.0),  # in flight past the wall: no further
        (0.06, -0.2, -0.2),  # ... and away from it is untouched
        (-0.04, 0.2, 0.2),  # in flight away from the wall: no more room than the pose shows
    ],
)
def test_the_room_before_a_wall_is_what_the_motion_in_flight_leaves(in_flight_x, twist_x, expected_x):
    out = limit_workspace((twist_x, 0, 0, 0, 0, 0), NEAR_X, IDENTITY, BOX, latency=0.0,
                          in_flight=(in_flight_x, 0, 0, 0, 0, 0))
    assert out[0] == pytest.approx(expected_x)


def test_motion_in_flight_away_from_a_wall_adds_no_room():
    twist = (0.5, -0.5, 0, 0, 0, 0)
    still = limit_workspace(twist, (0.79, -0.49, 0.5), IDENTITY, BOX, latency=0.05)
    away = limit_workspace(twist, (0.79, -0.49, 0.5), IDENTITY, BOX, latency=0.05, in_flight=(-0.1, 0.1, 0, 0, 0, 0))
    assert away == pytest.approx(still) and 0.0 < away[0] < 0.5


TILT = WorkspaceBox(enabled=True, min_rpy=(0.0, -0.3, -math.pi), max_rpy=(math.pi, 0.3, math.pi), angular_decel=4.0)


@pytest.mark.parametrize(
    "turn_y, wy, factor",
    [
        (0.0, 1.0, 1.0),  # 0.3 rad of pitch left: 1 rad/s brakes within 0.125
        (0.25, 1.0, math.sqrt(2 * 4.0 * 0.05)),  # 0.25 rad in flight towards the limit: 0.05 left
        (0.35, 1.0, 0.0),  # in flight past it: no further
        (0.35, -1.0, 1.0),  # ... turning back is untouched
        (-0.2, 1.0, 1.0),  # in flight away from it: no more room than the pose shows
    ],
)
def test_the_angle_before_an_orientation_limit_is_what_the_turn_in_flight_leaves(turn_y, wy, factor):
    out = limit_workspace((0, 0, 0, 0, wy, 0), (0.4, 0.0, 0.5), IDENTITY, TILT, latency=0.0,
                          in_flight=(0, 0, 0, 0, turn_y, 0))
    assert out[4] == pytest.approx(wy * factor, abs=1e-3)


# -- a delayed ideal arm in the loop ------------------------------------------------------------

def drive(latency: float, delay_ticks: int, twist, speed=0.25, angular_speed=1.0, seconds=3.0):
    """An ideal arm that acts on each of the mux's commands ``delay_ticks`` control periods after it was decided
    (the pose it replies to is that old), driven by a policy proposing ``twist`` until the limit; returns the
    furthest it got past the box (m) and past an orientation limit (rad)."""
    box = WorkspaceBox(enabled=True, min_xyz=(-0.1, -0.1, -0.1), max_xyz=(0.1, 0.1, 0.1), min_rpy=(0.0, -0.3, -0.3),
                       max_rpy=(math.pi, 0.3, 0.3), linear_decel=1.0, angular_decel=4.0, latency=latency)
    limits = Limits(max_linear_speed=speed, max_angular_speed=angular_speed, max_linear_accel=2.0,
                    max_angular_accel=8.0, workspace=box)
    mux = Mux(MuxConfig(sources=(POLICY,), limits=limits, rate=RATE))
    position, wxyz = np.zeros(3), np.array([1.0, 0.0, 0.0, 0.0])
    pending = deque([np.zeros(6)] * delay_ticks)
    past, past_angle = 0.0, 0.0
    for k in range(round(seconds / DT)):
        now = k * DT
        assert mux.ee_pose(tuple(position), tuple(wxyz[[1, 2, 3, 0]]), "base_link", now) is None
        assert mux.proposal("policy", Proposal(tuple(twist) + (0.0,), (0.0,), 1, now, now), now) is None
        pending.append(np.asarray(mux.update(now, now, proposal_arrived=True).command.twist))
        acting = pending.popleft()
        position = position + acting[:3] * DT
        wxyz = integrate(wxyz, acting[3:], DT)
        past = max(past, float(np.max(np.abs(position))) - 0.1)
        past_angle = max(past_angle, past_orientation_limit(matrix_from_quaternion(wxyz[[1, 2, 3, 0]]), box))
    return past, past_angle


def brake_without_in_flight(monkeypatch):
    """The braking before this change: as if nothing were in flight (the arm moving at the new, slower command
    during the latency)."""
    monkeypatch.setattr(in_flight.SentCommands, "in_flight", lambda self, now, window: (0.0,) * 6)


@pytest.mark.parametrize("twist", [(1, 0, 0, 0, 0, 0), (0, -0.6, 0.8, 0, 0, 0), (0, 0, 0, 0, 1, 0), (0, 0, 0, 0, 0, -1)])
def test_a_delayed_arm_overshot_without_the_commands_in_flight(monkeypatch, twist):
    brake_without_in_flight(monkeypatch)
    past, past_angle = drive(latency=0.15, delay_ticks=4, twist=twist)  # the arm's delay: all the latency configured
    assert past > 0.005 or past_angle > math.radians(2.0)


@pytest.mark.parametrize("twist", [(1, 0, 0, 0, 0, 0), (0, -0.6, 0.8, 0, 0, 0), (0, 0, 0, 0, 1, 0), (0, 0, 0, 0, 0, -1)])
def test_a_delayed_arm_stops_before_the_limit_counting_the_commands_in_flight(twist):
    past, past_angle = drive(latency=0.15, delay_ticks=4, twist=twist)
    assert past <= 1e-9 and past_angle <= 1e-6


@settings(max_examples=25, deadline=None)
@given(delay_ticks=st.integers(1, 6), margin=st.floats(0.0, 0.2), speed=st.floats(0.05, 0.6),
       angular_speed=st.floats(0.2, 2.0), direction=st.sampled_from([(1, 0, 0), (0, 0.6, -0.8), (-0.6, 0, 0.8)]),
       turn=st.sampled_from([(0, 1, 0), (0, 0, -1), (0, 0.6, 0.8)]))
def test_any_arm_delay_within_the_configured_latency_stops_before_every_limit(delay_ticks, margin, speed,
                                                                              angular_speed, direction, turn):
    latency = (delay_ticks - 1) * DT + margin  # with the control period the mux adds: at least the arm's delay
    past, past_angle = drive(latency, delay_ticks, direction + turn, speed=speed, angular_speed=angular_speed,
                             seconds=2.5)
    assert past <= 1e-9 and past_angle <= 1e-6
