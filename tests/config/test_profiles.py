"""Robot profiles: the workspace is on in every one, and the simulated tasks fit the Fetch box."""
import numpy as np
import pytest

from iil_robot.cli.sim import sim_overrides
from iil_robot.command.safety import WorkspaceBox
from iil_robot.config.profiles import load_profile, profile_names


def workspace(parameters: dict) -> WorkspaceBox:
    fields = ("min_xyz", "max_xyz", "min_rpy", "max_rpy")
    box = WorkspaceBox(enabled=parameters["workspace.enabled"],
                       **{f: tuple(parameters[f"workspace.{f}"]) for f in fields})
    box.validate()
    return box


@pytest.mark.parametrize("robot", profile_names())
def test_every_profile_turns_the_workspace_on_with_a_box_holding_its_reset_pose(robot):
    profile = load_profile(robot)
    box = workspace(profile.node_parameters("mux"))
    assert box.enabled
    episodes = profile.node_parameters("episode_manager")
    assert tuple(episodes["workspace_min"]) == box.min_xyz and tuple(episodes["workspace_max"]) == box.max_xyz
    reset, ranges = np.array(episodes["reset_pose"]), np.array(episodes["reset_ranges"])
    assert np.all(reset - ranges > box.min_xyz) and np.all(reset + ranges < box.max_xyz)


@pytest.mark.parametrize("robot", profile_names())
def test_the_simulated_arm_brings_its_own_workspace_whatever_robot_it_presents(robot):
    fetch = load_profile("fetch").node_parameters("mux")
    overrides = sim_overrides(load_profile(robot), "push")
    assert {k: v for k, v in overrides["mux"].items() if k.startswith("workspace.")} == \
        {k: v for k, v in fetch.items() if k.startswith("workspace.")}
    assert overrides["mux"]["gripper.output"] == "position_controller"  # the simulated arm's gripper controller
    fetch_episodes = load_profile("fetch").node_parameters("episode_manager")
    assert overrides["episode_manager"]["workspace_min"] == fetch_episodes["workspace_min"]


@pytest.mark.parametrize("task", ["reach", "push", "pick_and_place"])
def test_the_fetch_box_holds_every_block_goal_and_expert_pose_with_room_to_brake(task):
    from iil_robot.sim.expert import expert_action
    from iil_robot.sim.tasks import FetchTaskConfig, FetchTaskEnv

    box = workspace(load_profile("fetch").node_parameters("mux"))
    env = FetchTaskEnv(FetchTaskConfig(task))
    points = []
    for seed in range(5):
        env.reset(seed=seed)
        for _ in range(env.task.max_episode_steps):
            state = env.state()
            points += [state.grip_pos, state.goal] + ([state.object_pos] if state.object_pos is not None else [])
            if any(env.step(expert_action(state, env.task))[2:4]):
                break
    env.close()
    p = np.array(points)
    margin = 0.02  # m: no braking zone reaches into what the task needs at the expert's speed
    assert np.all(p > np.array(box.min_xyz) + margin) and np.all(p < np.array(box.max_xyz) - margin)
