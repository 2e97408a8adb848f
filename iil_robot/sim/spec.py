"""What a simulated task is: its name, control period, time limit and observation layout.

A `TaskSpec` is everything that code outside the simulator (the scripted expert, the
task-progress value, the simulated operator, later the ROS nodes) needs to know about a task.
It holds no MuJoCo objects, so an operator in another process can build one from the task
name and the control rate alone.

Observation layout (a flat float32 vector: Fetch's ``observation`` then ``desired_goal``).
Fetch reports velocities as displacement per control period (velocity × dt), not m/s.

===================  =========  ==================  ===================================
slice                reach      push, pick_and_place  meaning
===================  =========  ==================  ===================================
``grip_pos``         0:3        0:3                 gripper site position, world frame [m]
``object_pos``       —          3:6                 object centre [m]
``object_rel_pos``   —          6:9                 object_pos − grip_pos [m]
``gripper_state``    3:5        9:11                right, left finger joint [m] (0 = shut)
``object_rot``       —          11:14               object Euler angles [rad]
``object_velp``      —          14:17               object velocity relative to gripper × dt
``object_velr``      —          17:20               object angular velocity × dt
``grip_velp``        5:8        20:23               gripper velocity × dt [m]
``gripper_vel``      8:10       23:25               finger velocities × dt [m]
``goal``             10:13      25:28               desired goal (gripper or object) [m]
===================  =========  ==================  ===================================
"""
from __future__ import annotations

from dataclasses import dataclass

TASK_NAMES: tuple[str, ...] = ("reach", "push", "pick_and_place")

FETCH_TIMESTEP_S = 0.002
"""MuJoCo timestep of every Fetch model [s]; the control period must be a multiple of it."""

FETCH_ACTION_SCALE_M = 0.05
"""Fetch multiplies its position action in [-1, 1] by this to get the mocap displacement [m]."""

FINGER_OPEN_M = 0.05
"""Finger joint range upper limit [m] (each finger travels 0 … 0.05)."""

GRIPPER_DOWN_WXYZ = (0.7071067811865476, 0.0, 0.7071067811865476, 0.0)
"""Fetch's gripper orientation at every reset (pointing down), (w, x, y, z): the simulated arm's start orientation."""

MAX_ANGULAR_SPEED_RAD_S = 1.5
"""Largest angular speed the simulated arm turns its gripper at [rad/s] (above the mux's default 1 rad/s)."""

MAX_ROTATION_RAD = 1.2
"""Farthest the simulated arm turns its gripper from its start orientation [rad]: a turn beyond stops there (the
wrist's reach without the forearm hitting the table)."""

SUCCESS_THRESHOLD_M = 0.05
"""Fetch's success radius: achieved goal within this distance of the desired goal [m]."""

CAMERAS: dict[str, str] = {"front": "external_camera_0", "wrist": "gripper_camera_rgb"}
"""The simulated arm's MuJoCo camera behind each camera name (``iil-robot sim --cameras``, sim.launch.py's
``cameras``): front, in front of the table looking down at the workspace; wrist, on the gripper."""

DEFAULT_MAX_EPISODE_STEPS: dict[str, int] = {"reach": 50, "push": 100, "pick_and_place": 100}
"""Time limits at the default 20 Hz (2.5 s, 5 s, 5 s): about twice what the scripted
optimum needs at its 0.25 m/s cruise speed, so a slower operator can still finish."""


@dataclass(frozen=True)
class ObsLayout:
    """Named slices of the flat observation vector (see the module table)."""

    size: int
    grip_pos: slice
    gripper_state: slice
    grip_velp: slice
    gripper_vel: slice
    goal: slice
    object_pos: slice | None = None
    object_rel_pos: slice | None = None
    object_rot: slice | None = None
    object_velp: slice | None = None
    object_velr: slice | None = None


REACH_LAYOUT = ObsLayout(
    size=13, grip_pos=slice(0, 3), gripper_state=slice(3, 5), grip_velp=slice(5, 8),
    gripper_vel=slice(8, 10), goal=slice(10, 13),
)
OBJECT_LAYOUT = ObsLayout(
    size=28, grip_pos=slice(0, 3), object_pos=slice(3, 6), object_rel_pos=slice(6, 9),
    gripper_state=slice(9, 11), object_rot=slice(11, 14), object_velp=slice(14, 17),
    object_velr=slice(17, 20), grip_velp=slice(20, 23), gripper_vel=slice(23, 25), goal=slice(25, 28),
)


@dataclass(frozen=True)
class TaskSpec:
    """One Fetch task at one control rate."""

    name: str
    """Task name, one of `TASK_NAMES`."""
    control_rate_hz: float
    """Control ticks per second; one env step lasts 1 / control_rate_hz."""
    max_episode_steps: int
    """Time limit in control ticks; the episode is truncated when it is reached."""
    max_speed: float
    """Largest EE speed per axis the arm delivers [m/s]; faster commands are clipped."""

    @property
    def dt(self) -> float:
        """Control period [s]."""
        return 1.0 / self.control_rate_hz

    @property
    def has_object(self) -> bool:
        """Whether the task has a block to move (push, pick_and_place)."""
        return self.name != "reach"

    @property
    def gripper_enabled(self) -> bool:
        """Whether the finger command does anything (Fetch blocks the fingers in reach and push)."""
        return self.name == "pick_and_place"

    @property
    def layout(self) -> ObsLayout:
        """Named slices of this task's observation vector."""
        return OBJECT_LAYOUT if self.has_object else REACH_LAYOUT


def check_task_name(name: str) -> str:
    """Return ``name`` if it is a known task.

    Raises:
        ValueError: if it is not one of `TASK_NAMES`.
    """
    if name not in TASK_NAMES:
        raise ValueError(f"unknown task {name!r}; choose one of {', '.join(TASK_NAMES)}")
    return name


def substeps_for_rate(control_rate_hz: float) -> int:
    """MuJoCo substeps per control tick so that one tick lasts 1 / control_rate_hz.

    Raises:
        ValueError: if the period is not a whole number of 2 ms Fetch timesteps.
    """
    if not control_rate_hz > 0:
        raise ValueError(f"control_rate_hz must be > 0, got {control_rate_hz}")
    exact = 1.0 / (control_rate_hz * FETCH_TIMESTEP_S)
    substeps = round(exact)
    if substeps < 1 or abs(exact - substeps) > 1e-6:
        raise ValueError(
            f"control_rate_hz={control_rate_hz} gives a period of {1e3 / control_rate_hz:.3f} ms, "
            f"not a multiple of the 2 ms Fetch timestep; use a rate that divides 500 Hz "
            "(e.g. 10, 20, 25, 50, 100)"
        )
    return substeps
