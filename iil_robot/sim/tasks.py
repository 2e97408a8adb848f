"""Fetch Reach, Push and PickAndPlace behind the command units of a real servo-controlled arm.

`FetchTaskEnv` is a gymnasium environment whose action is what the arbitration mux sends a
real arm: an EE velocity in the robot base frame and a gripper closure,

    action = [vx, vy, vz, closure]    # m/s, m/s, m/s, 0 = fully open … 1 = fully closed
    action = [vx, vy, vz, wx, wy, wz, closure]    # the same with an angular velocity (rad/s)

Velocity → Fetch. Fetch moves a mocap target by ``0.05 m × action`` per step, but the weld
that drags the gripper after it only covers a fraction η of that within one control period
(measured once per rate by `tracking_efficiency`). The env integrates the velocity over the
period and divides by η, so a command of v moves the gripper by ≈ v·dt per tick:
``fetch_xyz = clip(v·dt / (0.05·η), -1, 1)``. The per-axis speed limit is therefore
``max_speed = 0.05·η / dt``:

=============  ======  =================
rate [Hz]      η       max_speed [m/s]
=============  ======  =================
10             0.96    0.48
20 (default)   0.75    0.75
25             0.66    0.83
50             0.41    1.01
=============  ======  =================

The MuJoCo substeps per tick are 1 / (rate · 2 ms): 25 at 20 Hz.

Angular velocity → Fetch. Fetch itself keeps its gripper pointing down (it pulls the mocap
body's orientation towards that every step). Once an angular velocity arrives, the env instead
integrates it (clipped to ``MAX_ANGULAR_SPEED_RAD_S`` in norm) into a target orientation, starting
from pointing down, and sets the mocap body's orientation to it every step, so the weld turns the
gripper after it; a turn that would take the target more than ``MAX_ROTATION_RAD`` from pointing
down stops there. A reset forgets the target (Fetch's behaviour again), so translation-only
commands run exactly as Fetch does.

Closure → Fetch. Each finger is sent to ``(1 − closure) × 0.05 m`` (Fetch's finger action is
added to the current finger position and +1 opens, so the env passes the difference). Reach
and Push keep Fetch's blocked gripper; the closure is ignored there.

Frames: the robot base has the world's axes, so the twist is the same in both (see
`iil_robot.sim.readout`, which also gives joint states and EE / block / goal poses).

Episodes terminate on success (Fetch's 5 cm criterion) and truncate at the time limit.
Rewards are Fetch's sparse ones (0 on success, -1 otherwise).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
from gymnasium_robotics.envs.fetch.pick_and_place import MujocoFetchPickAndPlaceEnv
from gymnasium_robotics.envs.fetch.push import MujocoFetchPushEnv
from gymnasium_robotics.envs.fetch.reach import MujocoFetchReachEnv

from iil_robot.sim.camera import DEFAULT_CAMERA, Camera
from iil_robot.sim.readout import JointStates, ScenePoses, read_joint_states, read_poses
from iil_robot.sim.rotation import angle_between, integrate
from iil_robot.sim.spec import (
    DEFAULT_MAX_EPISODE_STEPS,
    FETCH_ACTION_SCALE_M,
    FINGER_OPEN_M,
    GRIPPER_DOWN_WXYZ,
    MAX_ANGULAR_SPEED_RAD_S,
    MAX_ROTATION_RAD,
    TaskSpec,
    check_task_name,
    substeps_for_rate,
)
from iil_robot.sim.state import TaskState

__all__ = ["FetchTaskConfig", "FetchTaskEnv", "task_spec", "tracking_efficiency"]

class _Turning:
    """A Fetch env whose gripper turns to ``orientation_target`` (w, x, y, z) once one is set (None: Fetch's own
    pull towards pointing down)."""

    orientation_target: np.ndarray | None = None

    def _set_action(self, action) -> None:
        super()._set_action(action)
        if self.orientation_target is not None:
            self.data.mocap_quat[0] = self.orientation_target


class _Reach(_Turning, MujocoFetchReachEnv):
    pass


class _Push(_Turning, MujocoFetchPushEnv):
    pass


class _PickAndPlace(_Turning, MujocoFetchPickAndPlaceEnv):
    pass


_FETCH_CLASSES = {"reach": _Reach, "push": _Push, "pick_and_place": _PickAndPlace}


@dataclass(frozen=True)
class FetchTaskConfig:
    """How to build a `FetchTaskEnv`."""

    task: str = "reach"
    """Which Fetch task: "reach", "push" or "pick_and_place"."""
    control_rate_hz: float = 20.0
    """Control ticks per second; must divide 500 Hz (the 2 ms MuJoCo timestep)."""
    max_episode_steps: int | None = None
    """Time limit in ticks; None takes the task default (reach 50, push 100, pick_and_place 100)."""
    ends_episodes: bool = True
    """False: ``step`` never ends an episode (it still reports success and the time limit); deciding when an
    episode ends is then someone else's, as on a real arm (the episode manager node)."""


@functools.lru_cache(maxsize=None)
def tracking_efficiency(control_rate_hz: float) -> float:
    """Fraction η of a commanded Fetch displacement the gripper covers within one tick.

    Measured on a Reach arm from its initial pose: steady per-tick displacement under a
    constant 1 cm/tick command, averaged over x, y and z. Deterministic, cached per rate.
    """
    fetch = MujocoFetchReachEnv()
    fetch.n_substeps = substeps_for_rate(control_rate_hz)
    ratios = []
    for axis, sign in ((0, 1.0), (1, 1.0), (2, -1.0)):
        fetch.reset(seed=0)
        action = np.zeros(4, dtype=np.float32)
        action[axis] = sign * 0.2
        positions = [fetch.step(action)[0]["observation"][axis] for _ in range(5)]
        per_tick = np.abs(np.diff(positions)).mean()
        ratios.append(per_tick / (0.2 * FETCH_ACTION_SCALE_M))
    fetch.close()
    return float(np.mean(ratios))


def task_spec(name: str, control_rate_hz: float = 20.0, max_episode_steps: int | None = None) -> TaskSpec:
    """The `TaskSpec` of a task at a control rate (what `FetchTaskEnv.task` holds).

    Raises:
        ValueError: on an unknown task, a rate that does not divide 500 Hz, or a
            non-positive time limit.
    """
    check_task_name(name)
    steps = DEFAULT_MAX_EPISODE_STEPS[name] if max_episode_steps is None else int(max_episode_steps)
    if steps < 1:
        raise ValueError(f"max_episode_steps must be >= 1, got {steps}")
    substeps_for_rate(control_rate_hz)
    max_speed = FETCH_ACTION_SCALE_M * tracking_efficiency(control_rate_hz) * control_rate_hz
    return TaskSpec(name=name, control_rate_hz=float(control_rate_hz), max_episode_steps=steps, max_speed=max_speed)


class FetchTaskEnv(gym.Env):
    """A Fetch task driven by EE velocity and gripper closure (see the module docstring).

    Observation: flat float32 vector, Fetch's ``observation`` then ``desired_goal``; the
    named slices are in `iil_robot.sim.spec`. ``info["is_success"]`` is a bool.
    """

    metadata = {"render_modes": []}

    def __init__(self, config: FetchTaskConfig = FetchTaskConfig()) -> None:
        self.config = config
        self.task: TaskSpec = task_spec(config.task, config.control_rate_hz, config.max_episode_steps)
        self._fetch = _FETCH_CLASSES[config.task](reward_type="sparse")
        self._fetch.n_substeps = substeps_for_rate(config.control_rate_hz)
        self._fetch.metadata = {**self._fetch.metadata, "render_fps": config.control_rate_hz}
        self._fetch_per_mps = self.task.dt / (FETCH_ACTION_SCALE_M * tracking_efficiency(config.control_rate_hz))
        v = self.task.max_speed
        self.action_space = gym.spaces.Box(
            low=np.array([-v, -v, -v, 0.0], dtype=np.float32),
            high=np.array([v, v, v, 1.0], dtype=np.float32),
        )
        size = self.task.layout.size
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, shape=(size,), dtype=np.float32)
        self._finger_qpos_adr = [
            self.model.jnt_qposadr[self.model.joint(name).id]
            for name in ("robot0:r_gripper_finger_joint", "robot0:l_gripper_finger_joint")
        ]
        self._camera: Camera | None = None
        self._steps = 0
        self._done = True
        self._last_obs: np.ndarray | None = None

    # --- raw simulator access (for the value function, the expert and the ROS node) ---
    @property
    def model(self):
        """The `mujoco.MjModel`."""
        return self._fetch.model

    @property
    def data(self):
        """The `mujoco.MjData` (live: copy what you keep)."""
        return self._fetch.data

    @property
    def steps(self) -> int:
        """Control ticks since the last reset."""
        return self._steps

    def observation(self) -> np.ndarray:
        """The current observation (as the last reset/step returned it)."""
        if self._last_obs is None:
            raise RuntimeError("no observation yet: call reset() first")
        return self._last_obs.copy()

    def state(self) -> TaskState:
        """The current `TaskState` (gripper, fingers, block and goal positions)."""
        return TaskState.from_obs(self.observation(), self.task)

    def joint_states(self) -> JointStates:
        """The arm's joint positions and velocities (what a real arm's joint_states carries)."""
        return read_joint_states(self.model, self.data)

    def poses(self) -> ScenePoses:
        """EE, block and goal poses in the world frame (see `iil_robot.sim.readout`)."""
        return read_poses(self.model, self.data, self._fetch.goal, self.task.has_object)

    # --- gymnasium API ---
    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        """Start an episode; the same seed gives the same block and goal positions."""
        super().reset(seed=seed)
        self._fetch.orientation_target = None
        fetch_obs, _ = self._fetch.reset(seed=seed)
        self._steps = 0
        self._done = False
        self._last_obs = self._flatten(fetch_obs)
        return self._last_obs.copy(), {"is_success": False}

    def step(self, action) -> tuple[np.ndarray, float, bool, bool, dict]:
        """Apply ``[vx, vy, vz, closure]`` or ``[vx, vy, vz, wx, wy, wz, closure]`` for one control period.

        Raises:
            RuntimeError: before reset() or after the episode ended.
            ValueError: if the action is not 4 or 7 finite numbers.
        """
        if self._done:
            raise RuntimeError("episode is over (or never started): call reset() first")
        action = np.asarray(action, dtype=np.float64)
        if action.shape == (7,) and np.all(np.isfinite(action)):
            self._turn(action[3:6])
            action = action[[0, 1, 2, 6]]
        fetch_action = self.to_fetch_action(action)
        fetch_obs, reward, _, _, fetch_info = self._fetch.step(fetch_action)
        self._steps += 1
        self._last_obs = self._flatten(fetch_obs)
        success = bool(fetch_info["is_success"])
        terminated = success
        truncated = not success and self._steps >= self.task.max_episode_steps
        self._done = (terminated or truncated) and self.config.ends_episodes
        info = {"is_success": success, "fetch_action": fetch_action}
        return self._last_obs.copy(), float(reward), terminated, truncated, info

    def _turn(self, angular_velocity: np.ndarray) -> None:
        """Integrate an angular velocity (rad/s) into the gripper's target orientation (see the module docstring)."""
        target = self._fetch.orientation_target
        if target is None and not np.any(angular_velocity):
            return  # no turn yet: Fetch keeps the gripper pointing down
        start = np.array(GRIPPER_DOWN_WXYZ)
        speed = float(np.linalg.norm(angular_velocity))
        if speed > MAX_ANGULAR_SPEED_RAD_S:
            angular_velocity = angular_velocity * (MAX_ANGULAR_SPEED_RAD_S / speed)
        turned = integrate(start if target is None else target, angular_velocity, self.task.dt)
        if angle_between(start, turned) <= MAX_ROTATION_RAD:
            target = turned
        self._fetch.orientation_target = start if target is None else target

    def to_fetch_action(self, action) -> np.ndarray:
        """Convert ``[vx, vy, vz, closure]`` into Fetch's normalised action (see module doc).

        Raises:
            ValueError: if the action is not 4 finite numbers.
        """
        action = np.asarray(action, dtype=np.float64)
        if action.shape != (4,) or not np.all(np.isfinite(action)):
            raise ValueError(f"action must be 4 finite numbers [vx, vy, vz, closure] or 7 [vx, vy, vz, wx, wy, wz, closure], "
                             f"got {action!r}")
        fetch = np.empty(4, dtype=np.float32)
        fetch[:3] = np.clip(action[:3] * self._fetch_per_mps, -1.0, 1.0)
        closure = float(np.clip(action[3], 0.0, 1.0))
        fingers = self.data.qpos[self._finger_qpos_adr].mean()
        fetch[3] = np.clip((1.0 - closure) * FINGER_OPEN_M - fingers, -1.0, 1.0)
        return fetch

    def render_image(self, width: int = 128, height: int = 128, camera: str = DEFAULT_CAMERA) -> np.ndarray:
        """An RGB image of the scene, shape (height, width, 3), uint8.

        ``camera`` names a model camera: "external_camera_0" (default, in front of the table
        looking down), "head_camera_rgb" or "gripper_camera_rgb". Headless rendering needs
        ``MUJOCO_GL=egl`` (or osmesa) set before mujoco is first imported.

        Raises:
            ValueError: on an unknown camera or a non-positive size.
            RuntimeError: if no OpenGL backend works.
        """
        if self._camera is None:
            self._camera = Camera(self.model)
        self._fetch._render_callback()  # move the goal marker to the goal
        return self._camera.render(self.data, width, height, camera)

    def close(self) -> None:
        if self._camera is not None:
            self._camera.close()
            self._camera = None
        self._fetch.close()

    def _flatten(self, fetch_obs: dict) -> np.ndarray:
        return np.concatenate([fetch_obs["observation"], fetch_obs["desired_goal"]]).astype(np.float32)
