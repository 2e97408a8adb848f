"""Actions relative to the end effector: rotating between the command frame and the tool's."""
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from iil_robot.data.rotation import matrix_from_quaternion
from iil_robot.data.tool_frame import from_tool, orientation_indices, rotation_at, to_tool

finite = st.floats(-10.0, 10.0, allow_nan=False)
quaternions = st.tuples(finite, finite, finite, finite).filter(lambda q: np.linalg.norm(q) > 1e-2)
actions = st.tuples(*([finite] * 6), st.floats(0.0, 1.0))

YAW_90 = (0.0, 0.0, math.sin(math.pi / 4), math.cos(math.pi / 4))
"""The tool turned 90 degrees about the command frame's z: its x is the command frame's y."""


@given(quaternions, actions)
def test_tool_to_command_to_tool_is_the_identity_and_keeps_the_gripper_and_speeds(quaternion, action):
    rotation = matrix_from_quaternion(quaternion)
    command = from_tool(np.array(action), rotation)
    np.testing.assert_allclose(to_tool(command, rotation), action, atol=1e-9)
    assert command[6] == action[6]
    for part in (slice(0, 3), slice(3, 6)):  # a rotation keeps each velocity's size: the mux's norm limits see the same
        assert np.linalg.norm(command[part]) == pytest.approx(np.linalg.norm(action[part]), abs=1e-9)


def test_a_forward_tool_velocity_of_a_tool_turned_90_degrees_moves_along_the_command_y():
    rotation = matrix_from_quaternion(YAW_90)
    command = from_tool(np.array([0.1, 0.0, 0.0, 0.0, 0.0, 0.5, 0.7]), rotation)
    np.testing.assert_allclose(command, [0.0, 0.1, 0.0, 0.0, 0.0, 0.5, 0.7], atol=1e-12)  # yaw about the shared z
    np.testing.assert_allclose(to_tool(np.array([0.0, 0.1, 0.0, 0.2, 0.0, 0.0, 0.0]), rotation),
                               [0.1, 0.0, 0.0, 0.0, -0.2, 0.0, 0.0], atol=1e-12)


def test_rows_rotate_each_by_its_own_orientation():
    rotations = np.stack([np.eye(3), matrix_from_quaternion(YAW_90)])
    out = to_tool(np.array([[0.0, 0.1, 0, 0, 0, 0, 1], [0.0, 0.1, 0, 0, 0, 0, 0]]), rotations)
    np.testing.assert_allclose(out, [[0.0, 0.1, 0, 0, 0, 0, 1], [0.1, 0.0, 0, 0, 0, 0, 0]], atol=1e-12)


def test_the_orientation_is_found_by_name_and_a_layout_without_it_names_what_to_set():
    layout = ("ee.x", "ee.y", "ee.z", "ee_orientation.qx", "ee_orientation.qy", "ee_orientation.qz", "ee_orientation.qw")
    assert orientation_indices(layout, "ee_orientation") == (3, 4, 5, 6)
    with pytest.raises(ValueError, match=r"has no \['tool_q.qx'.*fields.tool_q.kind: orientation.*action.orientation_field"):
        orientation_indices(layout, "tool_q")
    with pytest.raises(ValueError, match="layout names no fields"):
        orientation_indices((), "ee_orientation")


def test_an_observation_without_a_rotation_gives_none():
    assert rotation_at((1.0, 0.0, 0.0, 0.0, 0.0), (1, 2, 3, 4)) is None  # zero quaternion
    assert rotation_at((0.0, 0.0, 0.0), (0, 1, 2, 3)) is None  # too short
    assert rotation_at(None, (0, 1, 2, 3)) is None
    np.testing.assert_allclose(rotation_at((9.0, *YAW_90), (1, 2, 3, 4)), matrix_from_quaternion(YAW_90))
