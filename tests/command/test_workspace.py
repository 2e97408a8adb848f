"""Recording the workspace: running bounds of the poses, refused frames, and the profile overlay."""
import math

import pytest

from iil_robot.command.safety import WorkspaceBox
from iil_robot.command.workspace import WorkspaceExtent

DOWN = (1.0, 0.0, 0.0, 0.0)  # tool pointing down: roll pi
DOWN_TILTED = (math.cos(0.15), 0.0, 0.0, math.sin(0.15))  # roll pi - 0.3 (x, y, z, w of a turn of pi - 0.3 about x)


def test_the_overlay_is_the_bounds_widened_by_the_margins_and_the_mux_accepts_it():
    extent = WorkspaceExtent("panda_link0")
    for xyz, q in (((0.4, -0.2, 0.1), DOWN), ((0.6, 0.1, 0.3), DOWN_TILTED), ((0.5, 0.2, 0.2), DOWN)):
        assert extent.add(xyz, q, "panda_link0") is None
    overlay = extent.parameters(margin=0.02, angle_margin=0.1)
    mux = overlay["mux"]
    assert mux["workspace.min_xyz"] == [0.38, -0.22, 0.08] and mux["workspace.max_xyz"] == [0.62, 0.22, 0.32]
    assert mux["workspace.min_rpy"][0] == pytest.approx(math.pi - 0.4, abs=1e-3)
    assert mux["workspace.max_rpy"][0] == pytest.approx(math.pi, abs=1e-4)  # clipped to the full range: no limit
    assert mux["workspace.min_rpy"][1:] == pytest.approx([-0.1, -0.1], abs=1e-3)
    assert overlay["episode_manager"] == {"workspace_min": mux["workspace.min_xyz"], "workspace_max": mux["workspace.max_xyz"]}
    WorkspaceBox(enabled=True, **{k.split(".")[1]: tuple(v) for k, v in mux.items() if k != "workspace.enabled"}).validate()


@pytest.mark.parametrize(
    "xyz, q, frame, match",
    [
        ((0.1, 0.2, 0.3), DOWN, "world", "'world', not the command frame 'base'"),
        ((0.1, math.nan, 0.3), DOWN, "base", "3 finite"),
        ((0.1, 0.2, 0.3), (0.0, 0.0, 0.0, 0.0), "base", "zero length"),
    ],
)
def test_bad_poses_are_refused_and_counted(xyz, q, frame, match):
    extent = WorkspaceExtent("base")
    assert match in extent.add(xyz, q, frame)
    assert extent.count == 0 and sum(extent.refused.values()) == 1


def test_nothing_to_write_before_the_first_pose():
    with pytest.raises(ValueError, match="no end-effector pose in base"):
        WorkspaceExtent("base").parameters(0.02, 0.1)
