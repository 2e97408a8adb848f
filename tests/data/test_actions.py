"""The named action spaces: which record values each keeps, their weights spec, and their bounds from the limits."""
import numpy as np
import pytest

from iil_robot.command.safety import Limits
from iil_robot.data.actions import ACTION_SPACES, ActionConfig, action_frame_of_spec, action_space, action_space_of_spec

TABLE = [
    # name, fields, spec, bounds at limits (0.3 m/s, 0.7 rad/s)
    ("translation", ("vx", "vy", "vz", "gripper"), "translation_gripper/v1",
     ((-0.3, -0.3, -0.3, 0.0), (0.3, 0.3, 0.3, 1.0))),
    ("translation_yaw", ("vx", "vy", "vz", "wz", "gripper"), "translation_yaw_gripper/v1",
     ((-0.3, -0.3, -0.3, -0.7, 0.0), (0.3, 0.3, 0.3, 0.7, 1.0))),
    ("6dof", ("vx", "vy", "vz", "wx", "wy", "wz", "gripper"), "twist_gripper/v1",
     ((-0.3, -0.3, -0.3, -0.7, -0.7, -0.7, 0.0), (0.3, 0.3, 0.3, 0.7, 0.7, 0.7, 1.0))),
]


@pytest.mark.parametrize("name, fields, spec, bounds", TABLE)
def test_each_space_names_its_values_spec_and_bounds_from_the_limits(name, fields, spec, bounds):
    space = action_space(name)
    assert (space.fields, space.spec, space.size) == (fields, spec, len(fields))
    assert action_space_of_spec(spec) is space
    np.testing.assert_allclose(ActionConfig(name, max_linear_speed=0.3, max_angular_speed=0.7).bounds(), bounds)


@pytest.mark.parametrize("name, fields, spec, bounds", TABLE)
def test_pick_then_expand_keeps_the_spaces_values_and_zeroes_the_rest(name, fields, spec, bounds):
    space = action_space(name)
    record = np.arange(1.0, 8.0)  # vx=1 ... gripper=7
    picked = space.pick(record)
    assert picked.tolist() == [record[i] for i in space.indices]
    expanded = space.expand(picked)
    assert [v for v, f in zip(expanded, ("vx", "vy", "vz", "wx", "wy", "wz", "gripper")) if f not in fields] \
        == [0.0] * (7 - len(fields))
    assert space.pick(np.array(expanded)).tolist() == picked.tolist()


def test_the_table_covers_every_space_and_only_rotating_spaces_rotate():
    assert [row[0] for row in TABLE] == list(ACTION_SPACES)
    assert [s.rotates for s in ACTION_SPACES.values()] == [False, True, True]


def test_the_default_bounds_are_the_mux_default_limits():
    low, high = ActionConfig("6dof").bounds()
    assert high[:3] == (Limits().max_linear_speed,) * 3 and high[3:6] == (Limits().max_angular_speed,) * 3


def test_bad_names_and_limits_are_refused_naming_what_to_fix():
    with pytest.raises(ValueError, match=r"choose one of \['translation', 'translation_yaw', '6dof'\]"):
        ActionConfig("rotation")
    with pytest.raises(ValueError, match="max_angular_speed=nan must be a finite speed"):
        ActionConfig(max_angular_speed=float("nan"))
    with pytest.raises(ValueError, match="unknown"):
        action_space_of_spec("twist/v9")
    with pytest.raises(ValueError, match="has 5 values"):
        action_space("translation_yaw").expand([0.0] * 4)


def test_the_difference_names_the_missing_and_extra_values():
    assert action_space("6dof").difference(action_space("translation")) == "missing ['wx', 'wy', 'wz']"
    assert action_space("translation").difference(action_space("translation_yaw")) == "extra ['wz']"
    assert action_space("6dof").difference(action_space("6dof")) == ""


@pytest.mark.parametrize("name", list(ACTION_SPACES))
def test_a_tool_frame_spec_is_the_spaces_own_with_a_prefix_and_reads_back_as_both(name):
    base, tool = ActionConfig(name), ActionConfig(name, frame="tool")
    assert base.spec == action_space(name).spec and tool.spec == "tool_" + base.spec
    assert action_space_of_spec(tool.spec) is action_space_of_spec(base.spec) is action_space(name)
    assert (action_frame_of_spec(base.spec), action_frame_of_spec(tool.spec)) == ("base", "tool")


def test_a_rotated_tool_action_fills_the_whole_linear_or_angular_part_of_the_proposal():
    assert ActionConfig("translation_yaw").command_indices == (0, 1, 2, 5, 6)
    assert ActionConfig("translation_yaw", frame="tool").command_indices == (0, 1, 2, 3, 4, 5, 6)
    assert ActionConfig("translation", frame="tool").command_indices == (0, 1, 2, 6)


def test_bad_frames_are_refused_naming_the_choices():
    with pytest.raises(ValueError, match=r"frame 'ee' is unknown; choose one of \['base', 'tool'\]"):
        ActionConfig(frame="ee")
    with pytest.raises(ValueError, match="needs orientation_field"):
        ActionConfig(frame="tool", orientation_field="")
    with pytest.raises(ValueError, match="tool_twist_gripper/v1"):  # the message lists the tool specs too
        action_space_of_spec("tool_twist/v9")
