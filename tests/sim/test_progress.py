import numpy as np
import pytest

from iil_robot.sim.expert import expert_action
from iil_robot.sim.progress import action_value, predict, progress_value, time_to_go
from iil_robot.sim.tasks import FetchTaskConfig, FetchTaskEnv


@pytest.mark.parametrize("task", ["reach", "push", "pick_and_place"])
def test_time_to_go_falls_about_one_tick_per_expert_tick(task):
    env = FetchTaskEnv(FetchTaskConfig(task=task))
    drops = []
    for seed in range(5):
        env.reset(seed=seed)
        before = time_to_go(env.state(), env.task)
        while True:
            *_, terminated, truncated, _ = env.step(expert_action(env.state(), env.task))
            after = time_to_go(env.state(), env.task)
            drops.append(before - after)
            before = after
            if terminated or truncated:
                break
        assert terminated
    assert 0.7 < np.mean(drops) < 1.1
    assert np.median(drops) == pytest.approx(1.0, abs=0.1)


def test_prediction_moves_the_gripper_by_v_dt_and_carries_a_held_block():
    env = FetchTaskEnv(FetchTaskConfig(task="pick_and_place"))
    env.reset(seed=0)
    state = env.state()
    moved = predict(state, np.array([0.2, 0.0, -0.1, 0.0]), env.task)
    np.testing.assert_allclose(moved.grip_pos - state.grip_pos, [0.01, 0.0, -0.005])
    np.testing.assert_array_equal(moved.object_pos, state.object_pos)
    held = type(state)(grip_pos=state.object_pos.copy(), finger_opening=0.048, goal=state.goal, object_pos=state.object_pos)
    lifted = predict(held, np.array([0.0, 0.0, 0.2, 1.0]), env.task)
    np.testing.assert_allclose(lifted.object_pos - held.object_pos, [0.0, 0.0, 0.01])
    dropped = predict(held, np.array([0.0, 0.0, 0.2, 0.0]), env.task)
    np.testing.assert_array_equal(dropped.object_pos, held.object_pos)
    assert dropped.finger_opening > 0.065  # opening lets go of the block


@pytest.mark.parametrize(
    "task, bad",
    [
        ("reach", "reverse"),
        ("push", "reverse"),
        ("pick_and_place", "reverse"),
        ("pick_and_place", "release"),
    ],
)
def test_bad_actions_have_lower_value_than_the_expert(task, bad):
    env = FetchTaskEnv(FetchTaskConfig(task=task))
    env.reset(seed=2)
    for _ in range(30 if bad == "release" else 3):  # release: get to holding the block first
        env.step(expert_action(env.state(), env.task))
    state = env.state()
    good = expert_action(state, env.task)
    worse = good.copy()
    if bad == "reverse":
        worse[:3] = -good[:3]
    else:
        worse[3] = 0.0
    q_good = action_value(state, good, env.task, discount=0.95)
    q_bad = action_value(state, worse, env.task, discount=0.95)
    assert q_bad < 0.97 * q_good
    assert 0.0 < progress_value(state, env.task, 0.95) <= 1.0
