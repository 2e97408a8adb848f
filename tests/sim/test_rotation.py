"""Quaternion helpers of the simulated arm: integration of an angular velocity and the rotation between orientations."""
import numpy as np
import pytest

from iil_robot.sim.rotation import angle_between, integrate, multiply, rotation_vector, turn_back

IDENTITY = np.array([1.0, 0.0, 0.0, 0.0])


@pytest.mark.parametrize("omega, dt", [((0.0, 0.0, 1.0), 0.5), ((0.3, -0.2, 0.1), 1.0), ((2.0, 0.0, 0.0), 0.05)])
def test_integrating_a_constant_angular_velocity_turns_by_omega_dt(omega, dt):
    turned = integrate(IDENTITY, np.array(omega), dt)
    np.testing.assert_allclose(rotation_vector(IDENTITY, turned), np.array(omega) * dt, atol=1e-9)
    assert np.linalg.norm(turned) == pytest.approx(1.0)


def test_a_quarter_turn_about_z_maps_x_to_y_and_steps_compose():
    quarter = integrate(IDENTITY, np.array([0.0, 0.0, np.pi / 2]), 1.0)
    x = np.array([0.0, 1.0, 0.0, 0.0])
    rotated = multiply(multiply(quarter, x), quarter * np.array([1, -1, -1, -1]))
    np.testing.assert_allclose(rotated[1:], [0.0, 1.0, 0.0], atol=1e-12)
    halves = integrate(integrate(IDENTITY, np.array([0.0, 0.0, np.pi / 4]), 1.0), np.array([0.0, 0.0, np.pi / 4]), 1.0)
    assert angle_between(quarter, halves) == pytest.approx(0.0, abs=1e-9)


def test_the_rotation_between_orientations_takes_the_short_way():
    start = integrate(IDENTITY, np.array([0.0, 1.0, 0.0]), 0.3)
    end = integrate(start, np.array([0.0, 0.0, -1.0]), 0.4)
    np.testing.assert_allclose(rotation_vector(start, end), [0.0, 0.0, -0.4], atol=1e-9)
    assert angle_between(start, -end) == pytest.approx(0.4)  # -q is the same orientation


@pytest.mark.parametrize("error, expected", [
    ((0.0, 0.0, 0.2), (0.0, 0.0, -0.4)),     # turned 0.2 rad about z: back at gain 2
    ((0.0, 0.6, 0.0), (0.0, -0.8, 0.0)),     # far: at most max_speed
    ((0.02, 0.0, 0.0), (0.0, 0.0, 0.0)),     # within the tolerance: leave the cap's rotation alone
])
def test_turn_back_points_the_gripper_back_to_its_orientation(error, expected):
    target = integrate(IDENTITY, np.array([0.0, 1.0, 0.0]), 0.5)  # not the identity: the rotation is taken between
    current = integrate(target, np.array(error), 1.0)
    np.testing.assert_allclose(turn_back(current, target, gain=2.0, max_speed=0.8, tolerance=0.03), expected, atol=1e-9)
