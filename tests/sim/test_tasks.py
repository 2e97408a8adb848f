import numpy as np
import pytest

from iil_robot.sim.expert import expert_action
from iil_robot.sim.rotation import angle_between, rotation_vector
from iil_robot.sim.spec import MAX_ROTATION_RAD, TASK_NAMES
from iil_robot.sim.tasks import FetchTaskConfig, FetchTaskEnv, task_spec


@pytest.fixture(scope="module", params=TASK_NAMES)
def env(request):
    env = FetchTaskEnv(FetchTaskConfig(task=request.param))
    yield env
    env.close()


@pytest.mark.parametrize("task, size", [("reach", 13), ("push", 28), ("pick_and_place", 28)])
def test_observation_and_action_shapes(task, size):
    env = FetchTaskEnv(FetchTaskConfig(task=task))
    obs, info = env.reset(seed=0)
    assert obs.shape == (size,) and obs.dtype == np.float32
    assert env.observation_space.shape == (size,)
    assert env.action_space.shape == (4,)
    assert info == {"is_success": False}
    obs, reward, terminated, truncated, info = env.step(np.zeros(4))
    assert obs.shape == (size,) and isinstance(reward, float)
    assert isinstance(info["is_success"], bool)
    np.testing.assert_allclose(obs[env.task.layout.goal], env.state().goal, atol=1e-6)
    env.close()


def test_same_seed_gives_the_same_episode(env):
    rng = np.random.default_rng(0)
    actions = rng.uniform(-0.3, 0.3, size=(15, 4))
    actions[:, 3] = rng.random(15)

    def rollout(seed):
        observations = [env.reset(seed=seed)[0]]
        observations += [env.step(a)[0] for a in actions]
        return np.array(observations)

    first, again, other = rollout(7), rollout(7), rollout(8)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first[0], other[0])


def test_zero_command_holds_the_gripper_still(env):
    obs, _ = env.reset(seed=1)
    start = obs[:3].copy()
    for _ in range(20):
        obs, *_ = env.step(np.zeros(4))
    assert np.linalg.norm(obs[:3] - start) < 0.005  # < 5 mm in 1 s (slight sag under gravity)


@pytest.mark.parametrize("velocity", [(0.2, 0.0, 0.0), (0.0, -0.15, 0.0), (0.0, 0.0, 0.1), (0.1, 0.1, -0.1)])
def test_velocity_command_moves_the_gripper_by_v_dt(velocity):
    env = FetchTaskEnv(FetchTaskConfig(task="reach"))
    obs, _ = env.reset(seed=0)
    start, ticks = obs[:3].copy(), 10
    for _ in range(ticks):
        obs, *_ = env.step([*velocity, 0.0])
    expected = np.array(velocity) * env.task.dt * ticks
    np.testing.assert_allclose(obs[:3] - start, expected, atol=0.1 * np.abs(expected).max() + 0.002)


def test_commands_beyond_the_speed_limit_are_clipped():
    env = FetchTaskEnv(FetchTaskConfig(task="reach"))
    assert 0.6 < env.task.max_speed < 0.9  # 0.05 m · η · 20 Hz, η ≈ 0.75
    fetch = env.to_fetch_action([10.0, -10.0, 0.0, 0.5])
    np.testing.assert_array_equal(fetch[:3], [1.0, -1.0, 0.0])


@pytest.mark.parametrize("closure, opening", [(0.0, 0.1), (1.0, 0.0)])
def test_gripper_closure_sets_the_fingers(closure, opening):
    env = FetchTaskEnv(FetchTaskConfig(task="pick_and_place"))
    env.reset(seed=0)
    for _ in range(5):
        obs, *_ = env.step([0.0, 0.0, 0.0, closure])
    assert env.state().finger_opening == pytest.approx(opening, abs=0.005)


def test_episode_terminates_on_success():
    env = FetchTaskEnv(FetchTaskConfig(task="reach"))
    obs, _ = env.reset(seed=3)
    for _ in range(env.task.max_episode_steps):
        obs, reward, terminated, truncated, info = env.step(expert_action(env.state(), env.task))
        if terminated or truncated:
            break
    assert terminated and not truncated and info["is_success"] and reward == 0.0
    assert env.state().goal_distance() < 0.05


def test_episode_truncates_at_the_time_limit():
    env = FetchTaskEnv(FetchTaskConfig(task="push", max_episode_steps=5))
    env.reset(seed=0)
    ends = [env.step(np.zeros(4))[2:4] for _ in range(5)]
    assert ends == [(False, False)] * 4 + [(False, True)]
    assert env.steps == 5


def test_step_after_the_end_asks_for_reset_and_reset_starts_over():
    env = FetchTaskEnv(FetchTaskConfig(task="reach", max_episode_steps=2))
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(4))
    first, _ = env.reset(seed=4)
    env.step([0.3, 0.0, 0.0, 0.0])
    env.step([0.3, 0.0, 0.0, 0.0])
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(4))
    again, _ = env.reset(seed=4)
    np.testing.assert_array_equal(first, again)
    assert env.steps == 0


@pytest.mark.parametrize("action", [[0.0, 0.0, 0.0], [np.nan, 0.0, 0.0, 0.0], [0.0, np.inf, 0.0, 1.0]])
def test_malformed_actions_are_rejected(action):
    env = FetchTaskEnv(FetchTaskConfig(task="reach"))
    env.reset(seed=0)
    with pytest.raises(ValueError, match="finite"):
        env.step(action)


@pytest.mark.parametrize("rate, substeps_ok", [(20.0, True), (10.0, True), (25.0, True), (30.0, False), (0.0, False)])
def test_control_rate_must_divide_the_timestep(rate, substeps_ok):
    if substeps_ok:
        assert task_spec("reach", rate).dt == pytest.approx(1.0 / rate)
    else:
        with pytest.raises(ValueError, match="control_rate_hz"):
            task_spec("reach", rate)


def test_unknown_task_is_rejected():
    with pytest.raises(ValueError, match="unknown task"):
        FetchTaskEnv(FetchTaskConfig(task="slide"))


def test_render_image_is_rgb_of_the_requested_size():
    env = FetchTaskEnv(FetchTaskConfig(task="pick_and_place"))
    env.reset(seed=0)
    image = env.render_image(64, 48)
    assert image.shape == (48, 64, 3) and image.dtype == np.uint8
    assert image.std() > 10  # not a blank frame
    with pytest.raises(ValueError, match="unknown camera"):
        env.render_image(64, 48, camera="nope")
    env.close()


def test_joint_states_and_poses_match_the_observation():
    env = FetchTaskEnv(FetchTaskConfig(task="pick_and_place"))
    obs, _ = env.reset(seed=0)
    for _ in range(3):
        obs, *_ = env.step([0.1, 0.0, 0.0, 1.0])
    layout = env.task.layout
    joints = env.joint_states()
    assert "shoulder_pan_joint" in joints.names and len(joints.names) == len(joints.position) == len(joints.velocity)
    fingers = [joints.position[joints.names.index(f"{side}_gripper_finger_joint")] for side in ("r", "l")]
    np.testing.assert_allclose(fingers, obs[layout.gripper_state], atol=1e-6)
    poses = env.poses()
    np.testing.assert_allclose(poses.ee.position, obs[layout.grip_pos], atol=1e-6)
    np.testing.assert_allclose(poses.object.position, obs[layout.object_pos], atol=1e-6)
    np.testing.assert_allclose(poses.goal.position, obs[layout.goal], atol=1e-6)
    assert np.linalg.norm(poses.ee.orientation) == pytest.approx(1.0)
    assert poses.frame == "world"


def _orientation(env) -> np.ndarray:
    x, y, z, w = env.poses().ee.orientation
    return np.array([w, x, y, z])


@pytest.mark.parametrize("angular", [(1.0, 0.0, 0.0), (0.0, -1.0, 0.0), (0.0, 0.0, 1.0), (0.0, 0.0, -0.6)])
def test_angular_velocity_turns_the_gripper_by_w_dt(angular):
    env = FetchTaskEnv(FetchTaskConfig(task="push"))
    env.reset(seed=0)
    start, ticks = _orientation(env), 10
    for _ in range(ticks):
        env.step([0.0, 0.0, 0.0, *angular, 0.0])
    for _ in range(5):  # the weld catches up with the target
        env.step(np.zeros(7))
    expected = np.array(angular) * env.task.dt * ticks
    np.testing.assert_allclose(rotation_vector(start, _orientation(env)), expected, atol=0.1 * np.abs(expected).max() + 0.05)
    env.close()


def test_turning_stops_at_the_arms_limit_and_a_reset_points_the_gripper_down_again():
    env = FetchTaskEnv(FetchTaskConfig(task="reach", ends_episodes=False))
    env.reset(seed=0)
    start = _orientation(env)
    for _ in range(60):  # 10 rad/s asked: clipped to the arm's angular speed, and the turn to its reach
        env.step([0.0, 0.0, 0.0, 0.0, 0.0, 10.0, 0.0])
    turned = angle_between(start, _orientation(env))
    assert MAX_ROTATION_RAD - 0.1 < turned < MAX_ROTATION_RAD + 0.1
    env.reset(seed=0)
    for _ in range(5):
        env.step(np.zeros(7))
    assert angle_between(start, _orientation(env)) < 0.02


def test_translation_only_commands_run_exactly_as_before_rotations_existed():
    """A 7-value command without rotation gives the same episode as the 4-value one (Fetch's own orientation hold)."""
    env = FetchTaskEnv(FetchTaskConfig(task="push"))
    rng = np.random.default_rng(0)
    actions = rng.uniform(-0.3, 0.3, size=(15, 4))
    env.reset(seed=3)
    four = [env.step(a)[0] for a in actions]
    env.reset(seed=3)
    seven = [env.step([*a[:3], 0.0, 0.0, 0.0, a[3]])[0] for a in actions]
    np.testing.assert_array_equal(four, seven)
    with pytest.raises(ValueError, match="or 7"):
        env.step([0.0] * 6)
