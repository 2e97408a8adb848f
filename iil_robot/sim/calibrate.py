"""Measure how an operator's success falls with severity, and fit the level → severity curve.

    python -m iil_robot.sim.calibrate --episodes 300

For each task it runs the operator in "demo" mode at a grid of severities (the same episode
seeds at every severity), divides by the rate at severity 0 (the scripted optimum), makes the
curve strictly falling (running minimum; flat stretches keep their first point) and prints
it in the form of `iil_robot.sim.skill.SUCCESS_CURVE`, to paste there.
"""
from __future__ import annotations

import argparse
import json
from concurrent.futures import ProcessPoolExecutor

from iil_robot.sim.operator import SimOperatorConfig
from iil_robot.sim.rollout import success_rate
from iil_robot.sim.skill import skill_for_severity
from iil_robot.sim.spec import TASK_NAMES

DEFAULT_GRID = [round(0.02 * i, 2) for i in range(25)] + [0.5, 0.6, 0.7, 0.8, 0.9, 1.0]


def measure(task: str, severity: float, episodes: int, seed: int) -> float:
    """Success rate of the operator at ``severity`` driving ``episodes`` episodes of ``task``."""
    config = SimOperatorConfig(model="demo", skill=skill_for_severity(task, severity))
    rate, _ = success_rate(task, config, episodes, seed)
    return rate


def falling_curve(severities: list[float], rates: list[float]) -> list[tuple[float, float]]:
    """(severity, rate / optimum) points, strictly falling, starting at (0, 1)."""
    optimum = rates[0]
    curve = [(0.0, 1.0)]
    for s, r in zip(severities[1:], rates[1:]):
        ratio = round(min(r / optimum, 1.0), 4)
        if ratio < curve[-1][1]:
            curve.append((round(s, 4), ratio))
    return curve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=300)
    parser.add_argument("--seed", type=int, default=100_000)
    parser.add_argument("--tasks", nargs="+", default=list(TASK_NAMES), choices=TASK_NAMES)
    parser.add_argument(
        "--severities", type=float, nargs="+", default=DEFAULT_GRID,
        help="severities to measure (default: every 0.02 up to 0.5, where success falls fast, then every 0.1)",
    )
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    grid = sorted({0.0, *args.severities})
    jobs = [(task, s) for task in args.tasks for s in grid]
    with ProcessPoolExecutor(args.workers) as pool:
        rates = list(pool.map(measure, *zip(*jobs), [args.episodes] * len(jobs), [args.seed] * len(jobs)))
    result = {}
    for task in args.tasks:
        task_rates = [r for (t, _), r in zip(jobs, rates) if t == task]
        result[task] = {"severity": grid, "success": task_rates, "curve": falling_curve(grid, task_rates)}
    print(json.dumps(result))
    for task, row in result.items():
        print(f'    "{task}": {tuple(row["curve"])},')
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
