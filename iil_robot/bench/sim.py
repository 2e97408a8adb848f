"""``iil-robot bench sim``: simulated arm throughput and scripted-operator success rates.

Prints one JSON object:
- ``steps_per_s``: headless env steps per second (mean over the tasks; per task in
  ``steps_per_s_by_task``), zero command, resets included;
- ``steps_per_s_images``: the same with one camera image rendered per step (``images`` says
  which), or null with ``images_error`` saying why;
- ``expert_success``: {task: {level: success rate}} of the simulated operator at each quality
  level driving whole episodes ("demo" mode), ``expected_success`` = level × the measured
  level-1.0 rate, and ``within_tolerance`` whether they agree within ``tolerance``.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor

# Headless rendering; must be set before mujoco is first imported.
os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402

from iil_robot.sim.operator import SimOperatorConfig  # noqa: E402
from iil_robot.sim.rollout import success_rate  # noqa: E402
from iil_robot.sim.spec import TASK_NAMES  # noqa: E402
from iil_robot.sim.tasks import FetchTaskConfig, FetchTaskEnv  # noqa: E402

DEFAULT_LEVELS = [1.0, 0.9, 0.7, 0.6, 0.3]
TOLERANCE = 0.15
"""Allowed |success − level × optimum| at 100 episodes: three binomial standard deviations at a
50% rate, so that all 15 default cells pass together unless the calibration is off."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the JSON object on one line")
    parser.add_argument("--episodes", type=int, default=100, help="episodes per task and level (default 100)")
    parser.add_argument("--tasks", nargs="+", default=list(TASK_NAMES), choices=TASK_NAMES)
    parser.add_argument("--levels", nargs="+", type=float, default=DEFAULT_LEVELS,
                        help="operator quality levels in [0, 1] (1.0 is always measured: it is the optimum)")
    parser.add_argument("--seed", type=int, default=0, help="episode i of every run uses env seed SEED + i")
    parser.add_argument("--speed-steps", type=int, default=2000, help="steps per task for the steps/s figures")
    parser.add_argument("--image-size", type=int, nargs=2, default=[128, 128], metavar=("W", "H"))
    parser.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1),
                        help="processes for the success rates (results do not depend on it)")


def run(args: argparse.Namespace) -> int:
    for level in args.levels:
        if not 0.0 <= level <= 1.0:
            print(f"error: --levels must be in [0, 1], got {level}", file=sys.stderr)
            return 2
    report: dict = {"benchmark": "sim", "control_rate_hz": FetchTaskConfig().control_rate_hz}
    speeds = {task: steps_per_second(task, args.speed_steps) for task in args.tasks}
    report["steps_per_s"] = round(float(np.mean(list(speeds.values()))), 1)
    report["steps_per_s_by_task"] = {task: round(v, 1) for task, v in speeds.items()}
    width, height = args.image_size
    try:
        with_images = [steps_per_second(task, max(50, args.speed_steps // 10), (width, height)) for task in args.tasks]
        report["steps_per_s_images"] = round(float(np.mean(with_images)), 1)
        report["images"] = {"width": width, "height": height, "camera": "external_camera_0",
                            "backend": os.environ.get("MUJOCO_GL")}
    except RuntimeError as err:
        report["steps_per_s_images"] = None
        report["images_error"] = str(err)
    report.update(expert_success(args.tasks, args.levels, args.episodes, args.seed, args.workers))
    print(json.dumps(report) if args.json else json.dumps(report, indent=2))
    return 0


def steps_per_second(task: str, steps: int, image_size: tuple[int, int] | None = None) -> float:
    """Env steps per second under a zero command, resetting at episode ends."""
    env = FetchTaskEnv(FetchTaskConfig(task=task))
    try:
        env.reset(seed=0)
        if image_size is not None:
            env.render_image(*image_size)  # create the GL context outside the timing
        zero = np.zeros(4)
        start = time.perf_counter()
        for i in range(steps):
            *_, terminated, truncated, _ = env.step(zero)
            if image_size is not None:
                env.render_image(*image_size)
            if terminated or truncated:
                env.reset(seed=i)
        return steps / (time.perf_counter() - start)
    finally:
        env.close()


def expert_success(tasks: list[str], levels: list[float], episodes: int, seed: int, workers: int) -> dict:
    """Success of the operator at each level, its expectation and the tolerance check."""
    levels = sorted({1.0, *levels}, reverse=True)
    jobs = [(task, level) for task in tasks for level in levels]
    # spawn, not fork: the parent may hold an OpenGL context from the image timing.
    with ProcessPoolExecutor(max(1, workers), mp_context=multiprocessing.get_context("spawn")) as pool:
        rates = list(pool.map(_rate, jobs, [episodes] * len(jobs), [seed] * len(jobs)))
    measured = {task: {} for task in tasks}
    for (task, level), (rate, steps) in zip(jobs, rates):
        measured[task][str(level)] = (rate, steps)
    success = {t: {lvl: r for lvl, (r, _) in by_level.items()} for t, by_level in measured.items()}
    expected = {t: {lvl: round(float(lvl) * by_level["1.0"], 3) for lvl in by_level} for t, by_level in success.items()}
    return {
        "expert_success": success,
        "expected_success": expected,
        "within_tolerance": {
            t: {lvl: abs(success[t][lvl] - expected[t][lvl]) <= TOLERANCE for lvl in success[t]} for t in tasks
        },
        "tolerance": TOLERANCE,
        "mean_episode_steps": {t: {lvl: s for lvl, (_, s) in by_level.items()} for t, by_level in measured.items()},
        "episodes": episodes,
        "seed": seed,
    }


def _rate(job: tuple[str, float], episodes: int, seed: int) -> tuple[float, float]:
    task, level = job
    rate, results = success_rate(task, SimOperatorConfig(model="demo", level=level), episodes, seed)
    return round(rate, 3), round(float(np.mean([r.steps for r in results])), 1) if results else 0.0
