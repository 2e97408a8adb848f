"""``iil-robot bench workspace``: does the workspace braking stop the arm at the wall and at the orientation limit?

The simulated arm (the MuJoCo Fetch arm that ``sim_arm`` runs) is driven at full speed into
each of the six walls of a box around its start, straight and diagonally, and at full angular
speed towards each orientation limit, with the mux's own logic (`iil_robot.command.mux.Mux`) in
the loop: each tick the mux gets the arm's pose and a proposal heading for the limit, and what it
decides reaches the arm ``arm_delay`` later (by default one control period, the latency of the real
loop: observe, decide, send; longer for an arm that acts on commands later, as a slow driver or a
network would). Prints one JSON object:

- ``max_overshoot_mm``: the furthest the end effector got past any wall, over every run (target
  ``target_overshoot_mm``);
- ``max_decel_mps2``: the largest drop of speed along one axis per control period (m/s^2): how
  hard the braking was (the arm should brake at about ``linear_decel``, never stop dead);
- ``max_final_gap_mm``: the largest distance from the wall at which a straight run stopped
  (braking too early wastes workspace);
- ``all_stopped``: whether every run reached a stop within ``max_seconds``;
- ``sim_hold_drift_mm_per_s``: how fast the simulated arm creeps while commanded zero (Fetch's
  mocap weld sags under gravity, about 3 mm/s down; a real arm's controller holds its pose). Each
  run therefore ends a few ticks after the mux stopped the arm, so that the creep of a held arm
  is not counted as overshoot;
- the configuration (speed, deceleration, latency, rate, box), ``arm_delay_s`` (the simulated arm's delay) and the
  number of runs.

Orientation runs (``rotations``): Fetch's gripper starts pointing down, which is pitch +pi/2 in the
workspace's roll/pitch/yaw, where roll and yaw are undefined (gimbal lock). So there are two sets:

- ``fetch``: from the start, the Fetch profile's own limit (pitch >= 1.2 rad: tilted at most
  0.37 rad from pointing down), turning about +-x and +-y, each of which tilts the gripper;
- ``tilted``: the gripper first turned by ``start_turn`` (0.5 rad about x: |roll| 90, pitch 61,
  yaw 90 degrees), then limits ``angle_margin`` (20 degrees) from there on |roll|, pitch and yaw,
  and a turn towards each limit about the axis that changes that angle alone.

For them: ``max_orientation_overshoot_deg`` (furthest past any limit, in the workspace's |roll|,
pitch, yaw; target ``target_orientation_overshoot_deg``), ``max_angular_decel_radps2`` (the largest
drop of angular speed per control period), ``max_orientation_final_gap_deg`` (how far before its
limit a run stopped; negative: past it), ``all_rotations_stopped``, and how faithfully the simulated arm turned:
``sim_max_rotation_lag_deg`` (the largest angle between the orientation the commands sent should
have reached and the one measured, while turning) and ``sim_final_rotation_lag_deg`` (the same at
the end of a run, once stopped: what the overshoot cannot see).

No ROS: the sim core and the mux core are stepped directly, on a simulated clock.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections import deque
from dataclasses import asdict, dataclass, replace
from itertools import product
from typing import Callable, Sequence

os.environ.setdefault("MUJOCO_GL", "egl")  # headless; must be set before MuJoCo loads

import numpy as np  # noqa: E402

from iil_robot.command.mux import Mux, MuxConfig, SourceConfig  # noqa: E402
from iil_robot.command.safety import FULL_RPY_MAX, FULL_RPY_MIN, Limits, WorkspaceBox, past_orientation_limit  # noqa: E402
from iil_robot.config.profiles import load_profile  # noqa: E402
from iil_robot.data.records import Proposal  # noqa: E402
from iil_robot.data.rotation import matrix_from_quaternion, matrix_from_rotvec, rpy_from_matrix, yaw_matrix  # noqa: E402
from iil_robot.sim.readout import Pose  # noqa: E402
from iil_robot.sim.rotation import angle_between, integrate  # noqa: E402
from iil_robot.sim.spec import GRIPPER_DOWN_WXYZ  # noqa: E402
from iil_robot.sim.tasks import FetchTaskConfig, FetchTaskEnv  # noqa: E402

TARGET_OVERSHOOT_MM = 2.0
TARGET_ORIENTATION_OVERSHOOT_DEG = 1.0
STOPPED_MPS = 0.01
"""A run ends once the mux commands less than this (m/s) along every axis it drove out on: the arm is stopped."""
STOPPED_RADPS = 0.02
"""A rotation run ends once the mux commands less than this angular speed (rad/s)."""
SETTLE_TICKS = 4
"""Ticks watched after that: the last command still reaching the arm, and the arm coming to rest."""
TURN_SETTLE_TICKS = 20
"""The same for a rotation run (1 s at 20 Hz): a gripper lagging its turn goes on turning for up to ~0.5 s after the
command stops, and the simulated weld holds the orientation without creeping (unlike the position)."""
FRAME = "base_link"
POLICY = SourceConfig("policy", "policy", "policy/proposal", timeout=0.25, priority=10)
PROFILE = "fetch"
"""The robot profile whose orientation limit the ``fetch`` rotation runs check: the simulated arm's."""
ANGLES = ("roll", "pitch", "yaw")


@dataclass(frozen=True)
class WorkspaceBenchConfig:
    """One bench run: the limits under test and how far the box and the angle ranges reach from the arm's start."""

    speed: float = Limits().max_linear_speed
    """Commanded speed (m/s): the mux's max_linear_speed (the commands ask for exactly this)."""
    linear_decel: float = WorkspaceBox().linear_decel
    """The workspace's braking deceleration (m/s^2)."""
    latency: float = WorkspaceBox().latency
    """The workspace's configured command latency (s), beyond the control period."""
    max_linear_accel: float = Limits().max_linear_accel
    """The mux's acceleration limit (m/s^2)."""
    rate: float = 20.0
    """Control rate (Hz) of the mux and the simulated arm."""
    half_size: tuple[float, float, float] = (0.15, 0.15, 0.08)
    """Half-widths (m) of the box around the arm's start (z is short: the table is 11 cm below the start)."""
    diagonal: bool = True
    """Also drive in at 45 degrees along each of the other two axes (4 more runs per wall)."""
    max_seconds: float = 4.0
    """How long each run drives at the wall (or the orientation limit)."""
    angular_speed: float = Limits().max_angular_speed
    """Commanded angular speed (rad/s): the mux's max_angular_speed."""
    angular_decel: float = WorkspaceBox().angular_decel
    """The workspace's angular braking deceleration (rad/s^2)."""
    max_angular_accel: float = Limits().max_angular_accel
    """The mux's angular acceleration limit (rad/s^2)."""
    start_turn: tuple[float, float, float] = (0.5, 0.0, 0.0)
    """Rotation vector (rad, command frame) the gripper is turned by from pointing down before the ``tilted`` runs,
    away from pitch +pi/2 where roll and yaw are undefined. About x the arm follows every run; tipped about -y
    instead, the pitch- run drives the elbow into its joint limit and the gripper lags by degrees."""
    angle_margin: float = 0.35
    """How far (rad) each |roll|, pitch and yaw limit of the ``tilted`` runs lies from their start (20 degrees)."""
    arm_delay: float | None = None
    """Seconds from the mux's decision to the simulated arm acting on it, a whole number of control periods;
    None: one control period."""

    def delay_ticks(self) -> int:
        """The arm delay in control periods (ValueError unless it is a positive whole number of them)."""
        if self.arm_delay is None:
            return 1
        ticks = round(self.arm_delay * self.rate)
        if ticks < 1 or abs(ticks - self.arm_delay * self.rate) > 1e-6:
            raise ValueError(f"arm delay {self.arm_delay} s must be a positive whole number of control periods "
                             f"({1.0 / self.rate:g} s at {self.rate:g} Hz)")
        return ticks


@dataclass(frozen=True)
class Rotation:
    """One orientation run: a start, the limits, and the direction the proposal turns at full angular speed."""

    name: str
    """e.g. "fetch +x" (about the command frame's x) or "tilted pitch-" (pitch alone, decreasing)."""
    start_turn: tuple[float, float, float]
    """Rotation vector (rad, command frame) the gripper is turned by from pointing down before the run."""
    axis: tuple[float, float, float]
    """Unit angular velocity direction (command frame)."""
    min_rpy: tuple[float, float, float]
    max_rpy: tuple[float, float, float]


@dataclass(frozen=True)
class Drive:
    """What one run saw: the poses after each tick (the first is the start) and the twists that reached the arm."""

    poses: list[Pose]
    sent: list[np.ndarray]
    stopped: bool


def directions(diagonal: bool) -> list[tuple[np.ndarray, int, float]]:
    """(unit direction, wall axis, wall side) per run: straight into each wall, then 45 degrees off it."""
    runs = []
    for axis, side in product(range(3), (1.0, -1.0)):
        normal = np.zeros(3)
        normal[axis] = side
        runs.append((normal, axis, side))
        if diagonal:
            for other, sign in product([a for a in range(3) if a != axis], (1.0, -1.0)):
                d = normal.copy()
                d[other] = sign
                runs.append((d / np.linalg.norm(d), axis, side))
    return runs


def rotations(config: WorkspaceBenchConfig) -> list[Rotation]:
    """The ``fetch`` runs (the profile's limit, from pointing down) and the ``tilted`` ones (see the module doc)."""
    mux = load_profile(PROFILE).node_parameters("mux")
    low, high = tuple(mux["workspace.min_rpy"]), tuple(mux["workspace.max_rpy"])
    runs = [Rotation(f"fetch {'+' if sign > 0 else '-'}{'xy'[i]}", (0.0, 0.0, 0.0), tuple(sign * np.eye(3)[i]), low, high)
            for i, sign in product(range(2), (1.0, -1.0))]
    tilt = config.start_turn
    roll, pitch, yaw = rpy_from_matrix(matrix_from_rotvec(tilt) @ _down())
    m = config.angle_margin
    low = (max(abs(roll) - m, 0.0), pitch - m, yaw - m)
    high = (abs(roll) + m, pitch + m, yaw + m)
    if not all(lo >= full_lo and hi <= full_hi for lo, hi, full_lo, full_hi in zip(low, high, FULL_RPY_MIN, FULL_RPY_MAX)):
        angles = [round(math.degrees(a), 1) for a in (abs(roll), pitch, yaw)]
        raise ValueError(f"start turn {list(tilt)} leaves |roll|, pitch, yaw at {angles} degrees, within "
                         f"the angle margin ({math.degrees(m):.0f}) of where they wrap (|roll| 180, pitch +-90, "
                         "yaw +-180): choose a start turn that tilts the gripper further from pointing down, or a smaller margin")
    # R = Rz(yaw) Ry(pitch) Rx(roll): the angular velocities that change one of the three alone
    rate_axes = (yaw_matrix(yaw) @ matrix_from_rotvec((0.0, pitch, 0.0)) @ np.array([1.0, 0.0, 0.0]),
                 yaw_matrix(yaw) @ np.array([0.0, 1.0, 0.0]), np.array([0.0, 0.0, 1.0]))
    runs += [Rotation(f"tilted {name}{'+' if sign > 0 else '-'}", tilt, tuple(sign * axis), low, high)
             for (name, axis), sign in product(zip(ANGLES, rate_axes), (1.0, -1.0))]
    return runs  # type: ignore[arg-type]


def drive_into_wall(env: FetchTaskEnv, config: WorkspaceBenchConfig, direction: np.ndarray) -> dict[str, float]:
    """One run from the start pose: overshoot past any wall (m), the largest per-axis braking (m/s^2), and the
    final distance to the nearest wall (m)."""
    env.reset(seed=0)
    start = np.asarray(env.poses().ee.position, dtype=np.float64)
    box = _box(config, start)
    twist = np.append(direction * config.speed, np.zeros(3))
    drive = _drive(env, config, box, twist, lambda sent: bool(np.all(np.abs(sent[:3][direction != 0]) < STOPPED_MPS)))
    p = np.array([pose.position for pose in drive.poses], dtype=np.float64)
    outside = np.maximum(p - np.asarray(box.max_xyz), np.asarray(box.min_xyz) - p)
    speed = np.abs(np.diff(p, axis=0)) * config.rate
    braking = (speed[:-1] - speed[1:]) * config.rate
    final_gap = float(np.min(np.minimum(np.asarray(box.max_xyz) - p[-1], p[-1] - np.asarray(box.min_xyz))))
    return {"overshoot": float(max(outside.max(), 0.0)), "decel": float(braking.max()), "final_gap": final_gap,
            "stopped": drive.stopped}


def turn_to_limit(env: FetchTaskEnv, config: WorkspaceBenchConfig, run: Rotation) -> dict[str, float]:
    """One rotation run: overshoot past any orientation limit (rad), the largest braking (rad/s^2), how far before a
    limit it stopped (rad), and how far the simulated arm lagged the turn the commands asked for (rad)."""
    env.reset(seed=0)
    if any(run.start_turn):
        _turn(env, np.asarray(run.start_turn))
    box = replace(_box(config, np.asarray(env.poses().ee.position, dtype=np.float64)),
                  min_rpy=run.min_rpy, max_rpy=run.max_rpy)
    twist = np.append(np.zeros(3), np.asarray(run.axis) * config.angular_speed)
    drive = _drive(env, config, box, twist, lambda sent: float(np.linalg.norm(sent[3:])) < STOPPED_RADPS, TURN_SETTLE_TICKS)
    measured = [_wxyz(pose.orientation) for pose in drive.poses]
    commanded = [measured[0]]
    for sent in drive.sent:  # where the turns sent should have taken the gripper
        commanded.append(integrate(commanded[-1], sent[3:], 1.0 / config.rate))
    lag = [angle_between(c, m) for c, m in zip(commanded, measured)]
    past = [past_orientation_limit(matrix_from_quaternion(pose.orientation), box) for pose in drive.poses]
    speed = np.array([angle_between(a, b) for a, b in zip(measured[:-1], measured[1:])]) * config.rate
    braking = (speed[:-1] - speed[1:]) * config.rate
    return {"overshoot": max(max(past), 0.0), "final_gap": -past[-1], "decel": float(braking.max()),
            "stopped": drive.stopped, "lag": max(lag), "final_lag": lag[-1]}


def hold_drift(env: FetchTaskEnv, seconds: float = 2.0) -> float:
    """How fast (m/s) the simulated arm creeps while commanded zero: Fetch's mocap weld sags under gravity."""
    env.reset(seed=0)
    before = np.asarray(env.poses().ee.position, dtype=np.float64)
    for _ in range(round(seconds / env.task.dt)):
        env.step(np.zeros(4))
    return float(np.linalg.norm(np.asarray(env.poses().ee.position) - before) / seconds)


def run_bench(config: WorkspaceBenchConfig) -> dict:
    arm_delay = config.delay_ticks() / config.rate  # refuses a bad delay before the simulator loads
    env = FetchTaskEnv(FetchTaskConfig("reach", config.rate, ends_episodes=False))
    try:
        walls = wall_report(env, config)
        turns = rotation_report(env, config)
    finally:
        env.close()
    return {"benchmark": "workspace", "config": asdict(config), "arm_delay_s": arm_delay,
            "sim_max_speed_mps": round(env.task.max_speed, 3),
            **walls, **turns}


def wall_report(env: FetchTaskEnv, config: WorkspaceBenchConfig) -> dict:
    """The runs into the walls and the simulated arm's creep while held."""
    runs = [(normal, drive_into_wall(env, config, normal)) for normal, _, _ in directions(config.diagonal)]
    straight = [r for normal, r in runs if np.count_nonzero(normal) == 1]
    worst = max(runs, key=lambda run: run[1]["overshoot"])
    return {
        "runs": len(runs),
        "max_overshoot_mm": round(worst[1]["overshoot"] * 1e3, 3),
        "worst_direction": [round(float(v), 3) for v in worst[0]],
        "target_overshoot_mm": TARGET_OVERSHOOT_MM,
        "max_decel_mps2": round(max(r["decel"] for _, r in runs), 3),
        "max_final_gap_mm": round(max(r["final_gap"] for r in straight) * 1e3, 3),
        "all_stopped": all(r["stopped"] for _, r in runs),
        "sim_hold_drift_mm_per_s": round(hold_drift(env) * 1e3, 3),
    }


def rotation_report(env: FetchTaskEnv, config: WorkspaceBenchConfig) -> dict:
    """The runs towards the orientation limits (see the module doc)."""
    turns = [(run, turn_to_limit(env, config, run)) for run in rotations(config)]
    worst = max(turns, key=lambda turn: turn[1]["overshoot"])
    overshoot_deg = round(math.degrees(worst[1]["overshoot"]), 3)
    return {
        "rotations": len(turns),
        "max_orientation_overshoot_deg": overshoot_deg,
        "worst_rotation": worst[0].name,
        "target_orientation_overshoot_deg": TARGET_ORIENTATION_OVERSHOOT_DEG,
        "orientation_target_met": overshoot_deg <= TARGET_ORIENTATION_OVERSHOOT_DEG,
        "max_angular_decel_radps2": round(max(r["decel"] for _, r in turns), 3),
        "max_orientation_final_gap_deg": round(math.degrees(max(r["final_gap"] for _, r in turns)), 3),
        "all_rotations_stopped": all(r["stopped"] for _, r in turns),
        "sim_max_rotation_lag_deg": round(math.degrees(max(r["lag"] for _, r in turns)), 3),
        "sim_final_rotation_lag_deg": round(math.degrees(max(r["final_lag"] for _, r in turns)), 3),
    }


def _box(config: WorkspaceBenchConfig, start: np.ndarray) -> WorkspaceBox:
    half = np.asarray(config.half_size)
    return WorkspaceBox(enabled=True, min_xyz=tuple(start - half), max_xyz=tuple(start + half),  # type: ignore[arg-type]
                        linear_decel=config.linear_decel, angular_decel=config.angular_decel, latency=config.latency)


def _drive(env: FetchTaskEnv, config: WorkspaceBenchConfig, box: WorkspaceBox, twist: Sequence[float],
           stopped: Callable[[np.ndarray], bool], settle_ticks: int = SETTLE_TICKS) -> Drive:
    """The policy proposes ``twist`` every tick from the arm's current pose until the mux's command is ``stopped``,
    then ``settle_ticks`` more after the last command has reached the arm; what the mux decides reaches the arm
    ``config.delay_ticks()`` ticks later."""
    limits = Limits(max_linear_speed=config.speed, max_angular_speed=config.angular_speed,
                    max_linear_accel=config.max_linear_accel, max_angular_accel=config.max_angular_accel, workspace=box)
    mux = Mux(MuxConfig(sources=(POLICY,), limits=limits, rate=config.rate, frame_id=FRAME))
    dt = 1.0 / config.rate
    action = tuple(float(v) for v in twist) + (0.0,)
    delay = config.delay_ticks()
    pending = deque([np.zeros(6)] * delay)  # what the mux decided over the last ticks: the first reaches the arm now
    poses, sent = [env.poses().ee], []
    stopped_at = None  # tick at which the mux's command no longer moves the arm towards the limit
    for k in range(round(config.max_seconds / dt)):
        now = k * dt
        pose = env.poses().ee
        mux.ee_pose(pose.position, pose.orientation, FRAME, now)
        mux.proposal("policy", Proposal(action, (0.0,), 1, now, now), now)
        command = mux.update(now, now, proposal_arrived=True).command
        sent.append(pending.popleft())
        env.step(np.append(sent[-1], 0.0))
        pending.append(np.asarray(command.twist, dtype=np.float64) if command is not None else np.zeros(6))
        poses.append(env.poses().ee)
        if stopped_at is None and stopped(pending[-1]):
            stopped_at = k
        if stopped_at is not None and k >= stopped_at + delay - 1 + settle_ticks:
            break
    return Drive(poses, sent, stopped_at is not None)


def _turn(env: FetchTaskEnv, rotvec: np.ndarray, seconds: float = 0.5, settle: float = 0.5) -> None:
    """Turn the gripper by ``rotvec`` (rad, command frame) directly, then hold it until it has come to rest."""
    ticks = round(seconds / env.task.dt)
    for _ in range(ticks):
        env.step(np.concatenate([np.zeros(3), rotvec / (ticks * env.task.dt), [0.0]]))
    for _ in range(round(settle / env.task.dt)):
        env.step(np.zeros(7))


def _down() -> np.ndarray:
    """Fetch's gripper orientation at a reset (pointing down) as a rotation matrix."""
    w, x, y, z = GRIPPER_DOWN_WXYZ
    return matrix_from_quaternion((x, y, z, w))


def _wxyz(xyzw: np.ndarray) -> np.ndarray:
    return np.asarray(xyzw, dtype=np.float64)[[3, 0, 1, 2]]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    d = WorkspaceBenchConfig()
    parser.add_argument("--json", action="store_true", help="print the JSON object on one line")
    parser.add_argument("--speed", type=float, default=d.speed, help=f"commanded speed, m/s (default {d.speed})")
    parser.add_argument("--decel", type=float, default=d.linear_decel, help="workspace.linear_decel, m/s^2")
    parser.add_argument("--latency", type=float, default=d.latency, help="workspace.latency, s")
    parser.add_argument("--accel", type=float, default=d.max_linear_accel, help="limits.max_linear_accel, m/s^2")
    parser.add_argument("--angular-speed", type=float, default=d.angular_speed,
                        help=f"commanded angular speed, rad/s (default {d.angular_speed})")
    parser.add_argument("--angular-decel", type=float, default=d.angular_decel, help="workspace.angular_decel, rad/s^2")
    parser.add_argument("--angular-accel", type=float, default=d.max_angular_accel,
                        help="limits.max_angular_accel, rad/s^2")
    parser.add_argument("--start-turn", type=float, nargs=3, default=d.start_turn, metavar=("X", "Y", "Z"),
                        help="rotation vector (rad) the gripper is turned by from pointing down before the tilted "
                             f"rotation runs (default {' '.join(str(v) for v in d.start_turn)})")
    parser.add_argument("--arm-delay", type=float, default=None, metavar="SECONDS",
                        help="seconds from the mux's decision to the simulated arm acting on it, a whole number of "
                             "control periods (default: one period)")
    parser.add_argument("--rate", type=float, default=d.rate, help="control rate, Hz (must divide 500)")
    parser.add_argument("--seconds", type=float, default=d.max_seconds, help="seconds per run")
    parser.add_argument("--straight-only", action="store_true", help="only straight into each wall (6 runs)")


def run(args: argparse.Namespace) -> int:
    config = replace(WorkspaceBenchConfig(), speed=args.speed, linear_decel=args.decel, latency=args.latency,
                     max_linear_accel=args.accel, angular_speed=args.angular_speed, angular_decel=args.angular_decel,
                     max_angular_accel=args.angular_accel, start_turn=tuple(args.start_turn), rate=args.rate,
                     max_seconds=args.seconds, diagonal=not args.straight_only, arm_delay=args.arm_delay)
    try:
        report = run_bench(config)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(report) if args.json else json.dumps(report, indent=2))
    return 0
