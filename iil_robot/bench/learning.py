"""``iil-robot bench learning``: RLIF vs HG-DAgger (and BC on the demos) with suboptimal operators.

Headless and without ROS, on the nodes' core code (`iil_robot.bench.learning_loop`): for every task,
operator level, method and seed, one interactive run with the value-based simulated operator
and the same env-step budget. Prints one JSON object:

- ``results``: rows {task, level, method, seed, success (the last evaluation of the policy
  alone), intervention_rate_first / _last (share of env steps the operator was in control in
  the first / last fifth of the interactive steps), steps_to_80 (env steps until an
  evaluation reached 0.8 success; null if none did), operator_steps and takeovers (human burden:
  interactive steps the operator drove, and intervention onsets), requests_raised and requests_needed
  (robot-gated ``thrifty``: help requests the policy raised, and those after which the operator judged
  its proposal bad; null for the other methods), critic_prefers_policy and policy_operator_gap (RLIF: the share
  of the operator's states where the critics value the actor's action at least as high as the operator's, and the mean
  distance between the two; ``RLPDLearner.operator_agreement``; null for the other methods), demo_success, updates,
  seconds};
- ``summary``: per task and level, mean success per method, RLIF / HG-DAgger, RLIF's relative
  drop of the intervention rate, the operator's floor (``optimum_intervention_rate``: the share of
  ticks it keeps control while it watches the scripted optimum) with the largest drop any policy
  could reach from RLIF's first fifth, and whether the issue's goals hold (and can);
- ``curves``: the learning-curve PNGs (one per task and level) and ``curves_json``; every finished
  run is also appended to ``rows.jsonl`` in the output folder as it ends (a long run that is
  interrupted keeps its rows).

Profiles: default (push and reach, levels 0.9 0.6 0.3, 3 seeds), ``--quick`` (one task, one
seed, two levels, a small budget; ≤ 10 minutes on 2 cores), ``--smoke`` (seconds; for tests).
``--images``: camera policies (rlif and hgdagger by default) on the sim camera's 32×32 render
(smoke 24×24) with smaller minibatches (``image_loop``); rows carry ``images: true``.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402

from iil_robot.acting.policy import HelpConfig  # noqa: E402
from iil_robot.bench.learning_loop import LoopConfig, LoopResult, run_loop  # noqa: E402
from iil_robot.learners.configs import LearnerConfigs  # noqa: E402
from iil_robot.learners.haco import HACOConfig  # noqa: E402
from iil_robot.learners.hgdagger import HGDAggerConfig  # noqa: E402
from iil_robot.learners.methods import METHODS  # noqa: E402
from iil_robot.learners.pvp import PVPConfig  # noqa: E402
from iil_robot.learners.rlpd import RLPDConfig, matmul_precision  # noqa: E402
from iil_robot.sim.rollout import optimum_intervention_rate  # noqa: E402

GOAL_RATIO_WORST = 1.3
GOAL_RATE_DROP = 0.8


@dataclass(frozen=True)
class Profile:
    tasks: tuple[str, ...]
    levels: tuple[float, ...]
    seeds: int
    loop: LoopConfig
    image_size: int = 32
    """``--images``: side (px) of the sim camera image."""


# Benchmark learners: smaller than the nodes' defaults so that a run fits 2 CPU cores; same code. RLPD as shipped in
# learner.yaml: initial temperature 0.01 and the conservative penalty on the operator's states (cql_alpha 1).
_RLPD = RLPDConfig(hidden=(128, 128), batch_size=128, utd_ratio=4, init_temperature=0.01, cql_alpha=1.0)
_HGD = HGDAggerConfig(hidden=(128, 128), batch_size=128)
_PVP = PVPConfig(hidden=(128, 128), batch_size=128)
_HACO = HACOConfig(hidden=(128, 128), batch_size=128)
PROFILES: dict[str, Profile] = {
    "full": Profile(("push", "reach"), (0.9, 0.6, 0.3), 3,
                    LoopConfig(env_steps=6000, eval_every=600, eval_episodes=10, pretrain_updates=500,
                               learners=LearnerConfigs(rlpd=_RLPD, hgdagger=_HGD, pvp=_PVP, haco=_HACO))),
    "quick": Profile(("reach",), (0.9, 0.3), 1,
                     LoopConfig(env_steps=3000, eval_every=500, eval_episodes=10, demo_episodes=10, pretrain_updates=500,
                                learners=LearnerConfigs(rlpd=replace(_RLPD, hidden=(64, 64), utd_ratio=2),
                                                        hgdagger=HGDAggerConfig(hidden=(64, 64), batch_size=128),
                                                        pvp=PVPConfig(hidden=(64, 64), batch_size=128),
                                                        haco=HACOConfig(hidden=(64, 64), batch_size=128)))),
    "smoke": Profile(("reach",), (0.6,), 1,
                     LoopConfig(env_steps=60, demo_episodes=1, eval_every=60, eval_episodes=1, refresh_every=30,
                                updates_per_step=0.1, pretrain_updates=2,
                                learners=LearnerConfigs(rlpd=RLPDConfig(hidden=(16, 16), batch_size=8, num_qs=2, utd_ratio=1),
                                                        hgdagger=HGDAggerConfig(hidden=(16, 16), batch_size=8, ensemble=2),
                                                        pvp=PVPConfig(hidden=(16, 16), batch_size=8),
                                                        haco=HACOConfig(hidden=(16, 16), batch_size=8)),
                                help=HelpConfig(enabled=True, min_ticks=10)),
                     image_size=24),
}


def image_loop(loop: LoopConfig, size: int) -> LoopConfig:
    """``--images``: the profile's loop with camera policies on ``size``×``size`` renders. Image updates are
    ~10-100x dearer than state ones on a CPU (four 3x3 convolutions of 32 filters per image), so the
    minibatches shrink (HG-DAgger 32 per member, RLPD 64) and the encoder gives 32 features."""
    learners = loop.learners.updated("rlpd", batch_size=min(loop.learners.rlpd.batch_size, 64), image_features=32)
    learners = learners.updated("hgdagger", batch_size=min(loop.learners.hgdagger.batch_size, 32), image_features=32)
    return replace(loop, image_size=size, learners=learners)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the JSON object on one line")
    profile = parser.add_mutually_exclusive_group()
    profile.add_argument("--quick", action="store_true", help="reach, levels 0.9 and 0.3, 1 seed, small budget (<= 10 min)")
    profile.add_argument("--smoke", action="store_true", help="a seconds-long run of the whole pipeline (tests)")
    parser.add_argument("--tasks", nargs="+", choices=("reach", "push", "pick_and_place"), help="override the profile's tasks")
    parser.add_argument("--levels", nargs="+", type=float, help="override the profile's operator levels")
    parser.add_argument("--methods", nargs="+", choices=list(METHODS),
                        help="methods to run (default: all; with --images: rlif hgdagger)")
    parser.add_argument("--images", action="store_true", help="camera policies: the policy and learner see the sim camera's "
                        "render (32x32; smoke 24x24) besides the state, paired with the step records by stamp "
                        "(rows say images: true)")
    parser.add_argument("--seeds", type=int, help="override the profile's number of seeds (0..N-1)")
    parser.add_argument("--first-seed", type=int, default=0, help="run seeds FIRST..FIRST+N-1 instead (a second set of seeds)")
    parser.add_argument("--env-steps", type=int, help="override the interactive env-step budget")
    parser.add_argument("--updates-per-step", type=float, help="override learner updates per env step")
    parser.add_argument("--utd", type=int, help="override RLPD's critic updates per update")
    parser.add_argument("--bc-weight", type=float, help="override RLPD's behaviour-cloning weight in the actor loss (RLIF)")
    parser.add_argument("--cql-alpha", type=float, help="override RLPD's conservative penalty on the operator's states (RLIF)")
    parser.add_argument("--backup-entropy", choices=("on", "off"), help="override whether RLPD's critic target subtracts the "
                        "entropy term (RLIF; default on)")
    parser.add_argument("--target-entropy", type=float, help="override RLPD's target entropy (RLIF; default -|A|/2)")
    parser.add_argument("--discount", type=float, help="override RLPD's discount gamma (RLIF; default 0.99)")
    parser.add_argument("--mixed-precision", action="store_true", help="RLPD's matrix multiplies in bfloat16 "
                        "(rlpd.mixed_precision; RLIF)")
    parser.add_argument("--head", choices=("l2", "mixture"), help="action head of the supervised learners (default l2)")
    parser.add_argument("--dagger-schedule", choices=("decay", "first", "linear"), help="DAgger's beta schedule (default decay)")
    parser.add_argument("--out", type=Path, help="folder for the PNGs and curves.json (default: a new temp dir)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")


def run(args: argparse.Namespace) -> int:
    import torch

    torch.set_num_threads(max(1, args.threads))
    profile = PROFILES["smoke" if args.smoke else "quick" if args.quick else "full"]
    loop = profile.loop
    if args.env_steps is not None:
        loop = replace(loop, env_steps=args.env_steps)
    if args.updates_per_step is not None:
        loop = replace(loop, updates_per_step=args.updates_per_step)
    if args.utd is not None:
        loop = replace(loop, learners=loop.learners.updated("rlpd", utd_ratio=args.utd))
    if args.bc_weight is not None:
        loop = replace(loop, learners=loop.learners.updated("rlpd", bc_weight=args.bc_weight))
    if args.cql_alpha is not None:
        loop = replace(loop, learners=loop.learners.updated("rlpd", cql_alpha=args.cql_alpha))
    if getattr(args, "backup_entropy", None):
        loop = replace(loop, learners=loop.learners.updated("rlpd", backup_entropy=args.backup_entropy == "on"))
    if getattr(args, "target_entropy", None) is not None:
        loop = replace(loop, learners=loop.learners.updated("rlpd", target_entropy=args.target_entropy))
    if getattr(args, "discount", None) is not None:
        loop = replace(loop, learners=loop.learners.updated("rlpd", discount=args.discount))
    if getattr(args, "mixed_precision", False):
        loop = replace(loop, learners=loop.learners.updated("rlpd", mixed_precision=True))
    if getattr(args, "head", None):
        loop = replace(loop, learners=loop.learners.updated("hgdagger", head=args.head))
    if getattr(args, "dagger_schedule", None):
        loop = replace(loop, dagger_schedule=args.dagger_schedule)
    images = getattr(args, "images", False)
    methods = list(args.methods or (["rlif", "hgdagger"] if images else METHODS))
    camera_methods = [m.name for m in METHODS.values() if m.images]
    if images:
        loop = image_loop(loop, profile.image_size)
        unsupported = [m for m in methods if m not in camera_methods]
        if unsupported:
            print(f"error: --images: {unsupported} learn from state only; camera methods are {camera_methods}", file=sys.stderr)
            return 2
    tasks = tuple(args.tasks or profile.tasks)
    levels = tuple(args.levels or profile.levels)
    for level in levels:
        if not 0.0 <= level <= 1.0:
            print(f"error: --levels must be in [0, 1], got {level}", file=sys.stderr)
            return 2
    seeds = profile.seeds if args.seeds is None else args.seeds
    first_seed = getattr(args, "first_seed", 0)
    if first_seed < 0:
        print(f"error: --first-seed must be 0 or more, got {first_seed}", file=sys.stderr)
        return 2
    out = args.out or Path(tempfile.mkdtemp(prefix="iil_learning_"))
    out.mkdir(parents=True, exist_ok=True)
    progress = None if args.quiet else (lambda line: print(line, file=sys.stderr, flush=True))

    start = time.perf_counter()
    results: list[LoopResult] = []
    for task in tasks:
        for level in levels:
            for seed in range(first_seed, first_seed + seeds):
                for method in methods:
                    results.append(run_loop(replace(loop, task=task, level=level, method=method, seed=seed), progress))
                    with open(out / "rows.jsonl", "a") as rows_file:  # each finished run survives an interrupted bench
                        rows_file.write(json.dumps(row(results[-1])) + "\n")
    rows = [row(r) for r in results]
    # what the same operator costs a perfect policy: the floor of every method's intervention rate
    floors = {(task, level): round(optimum_intervention_rate(task, replace(loop.operator, level=level), 10 * loop.eval_episodes,
                                                             seed=2_000_000), 3)
              for task in tasks for level in levels}
    report = {
        "benchmark": "learning",
        "profile": "smoke" if args.smoke else "quick" if args.quick else "full",
        "results": rows,
        "summary": summarise(rows, floors),
        "config": {"env_steps": loop.env_steps, "demo_episodes": loop.demo_episodes, "pretrain_updates": loop.pretrain_updates,
                   "updates_per_step": {m: replace(loop, method=m).budget for m in methods}, "refresh_every": loop.refresh_every,
                   "eval_every": loop.eval_every, "eval_episodes": loop.eval_episodes,
                   "operator": {"model": loop.operator.model, "takeover_steps": loop.operator.takeover_steps,
                                "alpha": loop.operator.alpha, "beta": loop.operator.beta},
                   **{name: asdict(c) for name, c in loop.learners.as_dict().items()},
                   "dagger": {"schedule": loop.dagger_schedule, "p": loop.dagger_p, "rounds": loop.dagger_rounds},
                   "dart_noise": loop.dart_noise,
                   "help": {"target_rate": loop.help.target_rate, "use_novelty": loop.help.use_novelty,
                            "use_risk": loop.help.use_risk, "min_ticks": loop.help.min_ticks,
                            "answer_max_steps": loop.operator.answer_max_steps},
                   "image_size": loop.image_size,
                   "threads": args.threads},
        "seconds": round(time.perf_counter() - start, 1),
    }
    if "rlif" in methods:  # what RLIF's learner multiplied in: --mixed-precision stays float32 without native bfloat16
        report["rlpd_precision"] = matmul_precision(loop.learners.as_dict()["rlpd"], torch.device("cpu"))
    curves_path = out / "curves.json"
    curves_path.write_text(json.dumps([curve(r) for r in results]))
    report["curves_json"] = str(curves_path)
    report["curves"] = plot(results, out)
    print(json.dumps(report) if args.json else json.dumps(report, indent=2))
    return 0


# -- rows and summaries ------------------------------------------------------------------------

def fifth_rates(in_control: list[bool]) -> tuple[float | None, float | None]:
    """Share of steps with the operator in control in the first and the last fifth of the steps.

    A fifth is ``ceil(n / 5)`` steps (at least one), so short runs still have both; None if no steps."""
    n = len(in_control)
    if n == 0:
        return None, None
    k = -(-n // 5)
    return sum(in_control[:k]) / k, sum(in_control[-k:]) / k


def steps_to(checkpoints: list[tuple[int, float]], threshold: float = 0.8) -> int | None:
    """Env steps at the first evaluation whose success reached ``threshold``; None if none did."""
    return next((steps for steps, success in checkpoints if success >= threshold - 1e-9), None)


def row(result: LoopResult) -> dict:
    config = result.config
    first, last = fifth_rates(result.step_interventions)
    points = [(c.env_steps, c.success) for c in result.checkpoints]
    return {
        "task": config.task, "level": config.level, "method": config.method, "seed": config.seed,
        "images": config.image_size > 0,
        "success": points[-1][1],
        "intervention_rate_first": _round(first), "intervention_rate_last": _round(last),
        "steps_to_80": steps_to(points),
        # human burden: how many interactive steps the operator drove, and how often they had to take over
        "operator_steps": int(sum(result.step_interventions)), "takeovers": result.takeovers,
        # robot-gated methods (thrifty): help requests raised, and those the operator judged needed (null otherwise)
        "requests_raised": result.requests_raised, "requests_needed": result.requests_needed,
        # RLIF: do the critics rank the actor's actions at least as high as the operator's on the operator's states,
        # and how far apart are the two (null for the other methods)
        "critic_prefers_policy": _round((result.critic or {}).get("critic_prefers_policy")),
        "policy_operator_gap": _round((result.critic or {}).get("policy_operator_gap")),
        "demo_success": result.demo_success, "updates": result.updates, "seconds": round(result.seconds, 1),
    }


def summarise(rows: list[dict], floors: dict[tuple[str, float], float] | None = None) -> dict:
    """Per task and level: mean success by method, RLIF / HG-DAgger, RLIF's intervention-rate drop; the goals.

    ``floors``: per (task, level), the intervention rate the operator imposes on the scripted optimum
    (``optimum_intervention_rate``); with it, each level also says how large a drop from RLIF's first fifth
    any policy could reach (``rlif_intervention_drop_attainable``), and how much of the gap between the first fifth
    and that floor RLIF closed by its last fifth (``rlif_intervention_gap_closed``: 1 = down to the floor, 0 = no
    change, negative = it rose; None where the first fifth is already at or below the floor)."""
    cells: dict = {}
    for r in rows:
        cells.setdefault(r["task"], {}).setdefault(str(r["level"]), []).append(r)
    summary: dict = {}
    for task, by_level in cells.items():
        summary[task] = {}
        for level, group in by_level.items():
            mean = {m: _mean([r["success"] for r in group if r["method"] == m]) for m in METHODS}
            firsts = [r["intervention_rate_first"] for r in group
                      if r["method"] == "rlif" and r["intervention_rate_first"] is not None]
            lasts = [r["intervention_rate_last"] for r in group
                     if r["method"] == "rlif" and r["intervention_rate_last"] is not None]
            first, last = _mean(firsts), _mean(lasts)
            floor = (floors or {}).get((task, float(level)))
            summary[task][level] = {
                "success": mean,
                "rlif_over_hgdagger": ratio(mean["rlif"], mean["hgdagger"]),
                "rlif_intervention_drop": None if not first else _round(1.0 - last / first),
                "optimum_intervention_rate": floor,
                "rlif_intervention_drop_attainable": (None if not first or floor is None
                                                      else _round(max(0.0, 1.0 - floor / first))),
                "rlif_intervention_gap_closed": (None if first is None or last is None or floor is None or first <= floor
                                                 else _round((first - last) / (first - floor))),
            }
        summary[task]["goals"] = goals(summary[task])
    return summary


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None:
        return None
    if b == 0:
        return None if a == 0 else float("inf")
    return _round(a / b)


def goals(by_level: dict) -> dict:
    """The issue's goals for one task: RLIF >= HG-DAgger at every level, >= 1.3x at the worst, rate drop >= 80%."""
    levels = sorted((lvl for lvl in by_level if lvl != "goals"), key=float)
    if not levels:
        return {}
    cells = [by_level[lvl] for lvl in levels]
    at_least = all(c["success"]["rlif"] is not None and c["success"]["hgdagger"] is not None
                   and c["success"]["rlif"] >= c["success"]["hgdagger"] for c in cells)
    worst = cells[0]["rlif_over_hgdagger"]
    drops = [c["rlif_intervention_drop"] for c in cells]
    attainable = [c.get("rlif_intervention_drop_attainable") for c in cells]
    return {
        "rlif_ge_hgdagger_every_level": at_least,
        "rlif_over_hgdagger_worst_level": worst,
        "ratio_goal_met": worst is not None and worst >= GOAL_RATIO_WORST,
        "intervention_drop_goal_met": all(d is not None and d >= GOAL_RATE_DROP for d in drops),
        # False where even the scripted optimum would keep the operator in control too often for the drop
        "intervention_drop_goal_attainable": all(a is not None and a >= GOAL_RATE_DROP for a in attainable),
    }


def curve(result: LoopResult) -> dict:
    c = result.config
    return {"task": c.task, "level": c.level, "method": c.method, "seed": c.seed,
            "env_steps": [p.env_steps for p in result.checkpoints], "success": [p.success for p in result.checkpoints],
            "intervention_rate": _windowed(result.step_interventions, max(1, c.eval_every))}


def plot(results: list[LoopResult], out: Path) -> list[str]:
    """One PNG per task and level: evaluated success (left) and intervention rate (right) per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    keys = sorted({(r.config.task, r.config.level) for r in results})
    colours = dict(zip(METHODS, plt.get_cmap("tab10").colors))
    for task, level in keys:
        fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
        for r in (r for r in results if (r.config.task, r.config.level) == (task, level)):
            c = curve(r)
            label = f"{r.config.method} s{r.config.seed}"
            left.plot(c["env_steps"], c["success"], marker="o", color=colours[r.config.method], alpha=0.8, label=label)
            window = max(1, r.config.eval_every)
            xs = [window * (i + 1) for i in range(len(c["intervention_rate"]))]
            right.plot(xs, c["intervention_rate"], color=colours[r.config.method], alpha=0.8, label=label)
        left.set(title=f"{task}, operator level {level}: success (policy alone)", xlabel="env steps", ylabel="success",
                 ylim=(-0.05, 1.05))
        right.set(title="intervention rate (operator in control)", xlabel="env steps", ylabel="rate", ylim=(-0.05, 1.05))
        left.axhline(0.8, color="k", lw=0.5, ls=":")
        right.legend(fontsize=7, ncol=2)
        fig.tight_layout()
        path = out / f"learning_{task}_{level}.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        paths.append(str(path))
    return paths


def _windowed(flags: list[bool], window: int) -> list[float]:
    return [float(np.mean(flags[i:i + window])) for i in range(0, len(flags), window)]


def _mean(values: list) -> float | None:
    return _round(float(np.mean(values))) if values else None


def _round(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else round(float(value), 3)
