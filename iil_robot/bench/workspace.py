"""``iil-robot bench workspace``: does the workspace braking stop the arm at the wall?

The simulated arm (the MuJoCo Fetch arm that ``sim_arm`` runs) is driven at full speed into
each of the six walls of a box around its start, straight and diagonally, with the mux's own
logic (`iil_robot.command.mux.Mux`) in the loop: each tick the mux gets the arm's pose and a
proposal heading for the wall, and what it decides reaches the arm one control period later
(the latency of the real loop: observe, decide, send). Prints one JSON object:

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
- the configuration (speed, deceleration, latency, rate, box) and the number of runs.

No ROS: the sim core and the mux core are stepped directly, on a simulated clock.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict, dataclass, replace
from itertools import product

os.environ.setdefault("MUJOCO_GL", "egl")  # headless; must be set before MuJoCo loads

import numpy as np  # noqa: E402

from iil_robot.command.mux import Mux, MuxConfig, SourceConfig  # noqa: E402
from iil_robot.command.safety import Limits, WorkspaceBox  # noqa: E402
from iil_robot.data.records import Proposal  # noqa: E402
from iil_robot.sim.tasks import FetchTaskConfig, FetchTaskEnv  # noqa: E402

TARGET_OVERSHOOT_MM = 2.0
STOPPED_MPS = 0.01
"""A run ends once the mux commands less than this (m/s) along every axis it drove out on: the arm is stopped."""
SETTLE_TICKS = 4
"""Ticks watched after that: the last command still reaching the arm, and the arm coming to rest."""
FRAME = "base_link"
POLICY = SourceConfig("policy", "policy", "policy/proposal", timeout=0.25, priority=10)


@dataclass(frozen=True)
class WorkspaceBenchConfig:
    """One bench run: the limits under test and how far the box reaches from the arm's start."""

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
    """How long each run drives at the wall."""


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


def drive_into_wall(env: FetchTaskEnv, config: WorkspaceBenchConfig, direction: np.ndarray) -> dict[str, float]:
    """One run from the start pose: overshoot past any wall (m), the largest per-axis braking (m/s^2), and the
    final distance to the nearest wall (m)."""
    env.reset(seed=0)
    start = np.asarray(env.poses().ee.position, dtype=np.float64)
    half = np.asarray(config.half_size)
    box = WorkspaceBox(enabled=True, min_xyz=tuple(start - half), max_xyz=tuple(start + half),  # type: ignore[arg-type]
                       linear_decel=config.linear_decel, latency=config.latency)
    limits = Limits(max_linear_speed=config.speed, max_linear_accel=config.max_linear_accel, workspace=box)
    mux = Mux(MuxConfig(sources=(POLICY,), limits=limits, rate=config.rate, frame_id=FRAME))
    dt = 1.0 / config.rate
    action = tuple(float(v) for v in direction * config.speed) + (0.0, 0.0, 0.0, 0.0)
    pending = np.zeros(3)  # what the mux decided last tick: it reaches the arm now
    positions = [start]
    stopped_at = None  # tick at which the mux's command no longer moves the arm out of the box
    for k in range(round(config.max_seconds / dt)):
        now = k * dt
        pose = env.poses().ee
        mux.ee_pose(pose.position, pose.orientation, FRAME, now)
        mux.proposal("policy", Proposal(action, (0.0,), 1, now, now), now)
        command = mux.update(now, now, proposal_arrived=True).command
        env.step(np.append(pending, 0.0))
        pending = np.asarray(command.twist[:3]) if command is not None else np.zeros(3)
        positions.append(np.asarray(env.poses().ee.position, dtype=np.float64))
        if stopped_at is None and np.all(np.abs(pending[direction != 0]) < STOPPED_MPS):
            stopped_at = k
        if stopped_at is not None and k >= stopped_at + SETTLE_TICKS:
            break
    p = np.array(positions)
    outside = np.maximum(p - np.asarray(box.max_xyz), np.asarray(box.min_xyz) - p)
    speed = np.abs(np.diff(p, axis=0)) / dt
    braking = (speed[:-1] - speed[1:]) / dt
    final_gap = float(np.min(np.minimum(np.asarray(box.max_xyz) - p[-1], p[-1] - np.asarray(box.min_xyz))))
    return {"overshoot": float(max(outside.max(), 0.0)), "decel": float(braking.max()), "final_gap": final_gap,
            "stopped": stopped_at is not None}


def hold_drift(env: FetchTaskEnv, seconds: float = 2.0) -> float:
    """How fast (m/s) the simulated arm creeps while commanded zero: Fetch's mocap weld sags under gravity."""
    env.reset(seed=0)
    before = np.asarray(env.poses().ee.position, dtype=np.float64)
    for _ in range(round(seconds / env.task.dt)):
        env.step(np.zeros(4))
    return float(np.linalg.norm(np.asarray(env.poses().ee.position) - before) / seconds)


def run_bench(config: WorkspaceBenchConfig) -> dict:
    env = FetchTaskEnv(FetchTaskConfig("reach", config.rate, ends_episodes=False))
    try:
        runs = [(normal, axis, side, drive_into_wall(env, config, normal)) for normal, axis, side in directions(config.diagonal)]
        drift = hold_drift(env)
    finally:
        env.close()
    straight = [r for normal, _, _, r in runs if np.count_nonzero(normal) == 1]
    worst = max(runs, key=lambda run: run[3]["overshoot"])
    return {
        "benchmark": "workspace",
        "config": asdict(config),
        "sim_max_speed_mps": round(env.task.max_speed, 3),
        "runs": len(runs),
        "max_overshoot_mm": round(worst[3]["overshoot"] * 1e3, 3),
        "worst_direction": [round(float(v), 3) for v in worst[0]],
        "target_overshoot_mm": TARGET_OVERSHOOT_MM,
        "max_decel_mps2": round(max(r["decel"] for _, _, _, r in runs), 3),
        "max_final_gap_mm": round(max(r["final_gap"] for r in straight) * 1e3, 3),
        "all_stopped": all(r["stopped"] for _, _, _, r in runs),
        "sim_hold_drift_mm_per_s": round(drift * 1e3, 3),
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    d = WorkspaceBenchConfig()
    parser.add_argument("--json", action="store_true", help="print the JSON object on one line")
    parser.add_argument("--speed", type=float, default=d.speed, help=f"commanded speed, m/s (default {d.speed})")
    parser.add_argument("--decel", type=float, default=d.linear_decel, help="workspace.linear_decel, m/s^2")
    parser.add_argument("--latency", type=float, default=d.latency, help="workspace.latency, s")
    parser.add_argument("--accel", type=float, default=d.max_linear_accel, help="limits.max_linear_accel, m/s^2")
    parser.add_argument("--rate", type=float, default=d.rate, help="control rate, Hz (must divide 500)")
    parser.add_argument("--seconds", type=float, default=d.max_seconds, help="seconds per run")
    parser.add_argument("--straight-only", action="store_true", help="only straight into each wall (6 runs)")


def run(args: argparse.Namespace) -> int:
    config = replace(WorkspaceBenchConfig(), speed=args.speed, linear_decel=args.decel, latency=args.latency,
                     max_linear_accel=args.accel, rate=args.rate, max_seconds=args.seconds, diagonal=not args.straight_only)
    try:
        report = run_bench(config)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(report) if args.json else json.dumps(report, indent=2))
    return 0
