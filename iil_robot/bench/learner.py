"""``iil-robot bench learner --json``: full RLPD updates per second, batched critic ensemble vs a
Python loop over critics, in the same run.

One full update = one critic update + one actor update + one temperature update (UTD 1), with
the RLIF authors' shapes: observation 25, action 4, 10 critics of 256x256 with LayerNorm,
batch 256. The variants run back to back in rounds; ``updates_per_s_*`` is each variant's median
round, ``speedup_*_vs_loop`` the median of the per-round ratios (with their range: on a shared
machine the rate of a whole round drifts, the ratio within a round much less). On CUDA the same
figures are added with a ``_cuda`` suffix.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import torch

from iil_robot.learners.buffers import Batch
from iil_robot.learners.hgdagger import HGDAggerConfig, HGDAggerLearner
from iil_robot.learners.memory import keep_freed_memory
from iil_robot.learners.rlpd import RLPDConfig, RLPDLearner

OBS_DIM, ACT_DIM = 25, 4


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print only the JSON object")
    parser.add_argument("--quick", action="store_true", help="a few updates only (a smoke run)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds per variant (default 5)")
    parser.add_argument("--updates", type=int, default=30, help="updates per round (default 30)")
    parser.add_argument("--compile", action="store_true", help="also time the batched learner under torch.compile")
    parser.add_argument("--profile", action="store_true",
                        help="also report the share of each variant's CPU time spent in matrix multiplies (torch.profiler) "
                        "and time the widest layer's multiplies stacked and one critic at a time")
    parser.add_argument("--images", action="store_true", help="also time camera policies: RLPD and HG-DAgger updates on "
                        "64x64 RGB images + the same state (DrQ encoder, random shift)")


def _batch(device: torch.device, size: int, seed: int) -> Batch:
    g = torch.Generator().manual_seed(seed)
    return Batch(torch.randn(size, OBS_DIM, generator=g).to(device), (torch.rand(size, ACT_DIM, generator=g) * 2 - 1).to(device),
                 -(torch.rand(size, generator=g) < 0.05).float().to(device), torch.randn(size, OBS_DIM, generator=g).to(device),
                 torch.ones(size).to(device))


IMAGE = (3, 64, 64)


def _image_batch(device: torch.device, size: int, seed: int) -> Batch:
    g = torch.Generator().manual_seed(seed)
    pixels = lambda: torch.randint(0, 256, (size, *IMAGE), dtype=torch.uint8, generator=g).to(device)  # noqa: E731
    return Batch(**{**_batch(device, size, seed).__dict__, "images": pixels(), "next_images": pixels()})


def measure_images(device: torch.device, rounds: int, updates: int) -> dict[str, float]:
    """Full RLPD updates/s (UTD 1, batch 256) and HG-DAgger updates/s (5 members x 256) on images + state."""
    rlpd = RLPDLearner(OBS_DIM, ACT_DIM, RLPDConfig(utd_ratio=1), device=device, image=IMAGE)
    hgdagger = HGDAggerLearner(OBS_DIM, ACT_DIM, HGDAggerConfig(), device=device, image=IMAGE)
    batch = _image_batch(device, 256, 0)
    e, b = hgdagger.config.ensemble, hgdagger.config.batch_size
    members = (batch.observations[:b].expand(e, b, OBS_DIM).contiguous(), batch.actions[:b].expand(e, b, ACT_DIM).contiguous(),
               batch.images[:b].expand(e, b, *IMAGE).contiguous())
    steps = {"rlpd_images": lambda: rlpd.update(batch), "hgdagger_images": lambda: hgdagger.update(*members)}
    rates: dict[str, list[float]] = {name: [] for name in steps}
    for step in steps.values():  # warm-up
        step()
    for _ in range(rounds):
        for name, step in steps.items():
            _sync(device)
            start = time.perf_counter()
            for _ in range(updates):
                step()
            _sync(device)
            rates[name].append(updates / (time.perf_counter() - start))
    return {name: statistics.median(r) for name, r in rates.items()}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(device: torch.device, variants: dict[str, RLPDConfig], rounds: int, updates: int) -> dict[str, list[float]]:
    """Updates/s of each variant in each round. In a round the variants run back to back, in reversed order every
    other round, so that a slow spell of a shared machine hits the variants of one round alike."""
    learners = {name: RLPDLearner(OBS_DIM, ACT_DIM, config, device=device) for name, config in variants.items()}
    batches = [_batch(device, 256, seed) for seed in range(4)]
    for learner in learners.values():  # warm-up (and compilation)
        for i in range(3):
            learner.update(batches[i % 4])
    _sync(device)
    rates: dict[str, list[float]] = {name: [] for name in learners}
    for round_ in range(rounds):
        order = list(learners.items()) if round_ % 2 == 0 else list(reversed(learners.items()))
        for name, learner in order:
            start = time.perf_counter()
            for i in range(updates):
                learner.update(batches[i % 4])
            _sync(device)
            rates[name].append(updates / (time.perf_counter() - start))
    return rates


def speedup(rates: dict[str, list[float]], name: str, baseline: str = "loop") -> dict[str, float]:
    """The median over rounds of ``name``'s rate over ``baseline``'s in the same round, and the lowest and highest."""
    ratios = [a / b for a, b in zip(rates[name], rates[baseline])]
    return {"median": statistics.median(ratios), "min": min(ratios), "max": max(ratios)}


def rate_figures(rates: dict[str, list[float]], suffix: str = "") -> dict[str, object]:
    """The JSON figures of one ``measure``: each variant's median rate, each one's speedup over the loop, and the
    compiled step's over the compiled loop when both ran."""
    figures: dict[str, object] = {f"updates_per_s_{name}{suffix}": round(statistics.median(rate), 2)
                                  for name, rate in rates.items()}
    pairs = [(name, "loop") for name in rates if name != "loop"]
    if {"compiled", "loop_compiled"} <= rates.keys():
        pairs.append(("compiled", "loop_compiled"))
    for name, baseline in pairs:
        ratio = speedup(rates, name, baseline)
        figures[f"speedup_{name}_vs_{baseline}{suffix}"] = round(ratio["median"], 3)
        figures[f"speedup_{name}_vs_{baseline}_range{suffix}"] = [round(ratio["min"], 3), round(ratio["max"], 3)]
    return figures


GEMM_OPS = ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm")


def gemm_share(device: torch.device, config: RLPDConfig, updates: int) -> float:
    """Share of one variant's self CPU time spent in matrix multiplies, over ``updates`` updates.

    Batching can only remove the time outside the multiplies (it runs the same multiplies, stacked),
    so ``1 / gemm_share`` of the loop bounds what a batched step can gain over it on this CPU."""
    from torch.profiler import ProfilerActivity, profile

    learner = RLPDLearner(OBS_DIM, ACT_DIM, config, device=device)
    batches = [_batch(device, 256, seed) for seed in range(4)]
    for i in range(3):
        learner.update(batches[i % 4])
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for i in range(updates):
            learner.update(batches[i % 4])
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    return sum(e.self_cpu_time_total for e in events if e.key in GEMM_OPS) / total


def widest_layer_gemm_ms(device: torch.device, members: int = 10, batch: int = 256, width: int = 256,
                         repeats: int = 50) -> dict[str, float]:
    """Milliseconds of the three multiplies of one hidden 256x256 layer of every critic (forward, weight
    gradient, input gradient), stacked (``bmm``, as ``EnsembleLinear``) and one critic at a time (as the loop).

    Equal figures mean batching runs the same multiplies no faster: it can only remove per-op dispatch."""
    g = torch.Generator().manual_seed(0)
    x, w, grad = (torch.randn(members, batch, width, generator=g).to(device) for _ in range(3))
    xs, ws, grads = ([t[i].clone() for i in range(members)] for t in (x, w, grad))

    def stacked() -> None:
        torch.bmm(x, w), torch.bmm(x.transpose(1, 2), grad), torch.bmm(grad, w.transpose(1, 2))

    def looped() -> None:
        for i in range(members):
            xs[i] @ ws[i], xs[i].t() @ grads[i], grads[i] @ ws[i].t()

    times = {}
    for name, step in (("batched", stacked), ("loop", looped)):
        step()
        _sync(device)
        start = time.perf_counter()
        for _ in range(repeats):
            step()
        _sync(device)
        times[name] = (time.perf_counter() - start) / repeats * 1e3
    return times


def run(args: argparse.Namespace) -> int:
    torch.set_num_threads(args.threads)
    keep_freed_memory()  # as the learner node does (see learners/memory.py)
    rounds, updates = (1, 3) if args.quick else (args.rounds, args.updates)
    base = RLPDConfig(utd_ratio=1)
    variants = {"batched": base, "loop": RLPDConfig(utd_ratio=1, critic_impl="loop")}
    if args.compile:
        variants["compiled"] = RLPDConfig(utd_ratio=1, compile=True)
        variants["loop_compiled"] = RLPDConfig(utd_ratio=1, critic_impl="loop", compile=True)  # each critic compiled
    result: dict[str, object] = {"device": "cpu", "threads": args.threads, "obs_dim": OBS_DIM, "act_dim": ACT_DIM,
                                 "num_qs": base.num_qs, "hidden": list(base.hidden), "batch_size": base.batch_size}
    result |= rate_figures(measure(torch.device("cpu"), variants, rounds, updates))
    if args.profile:
        profiled = 3 if args.quick else 20
        loop_share = gemm_share(torch.device("cpu"), variants["loop"], profiled)
        result["gemm_share_loop"] = round(loop_share, 3)
        result["gemm_share_batched"] = round(gemm_share(torch.device("cpu"), base, profiled), 3)
        result["batched_ceiling_vs_loop"] = round(1.0 / loop_share, 3)
        for name, ms in widest_layer_gemm_ms(torch.device("cpu"), repeats=3 if args.quick else 50).items():
            result[f"widest_layer_gemm_ms_{name}"] = round(ms, 3)
    if torch.cuda.is_available():
        result["device"] = "cpu+cuda"
        result |= rate_figures(measure(torch.device("cuda"), variants, rounds, updates * 4), suffix="_cuda")
    if args.images:
        result["image"] = list(IMAGE)
        image_rounds, image_updates = (1, 2) if args.quick else (3, 5)
        for name, rate in measure_images(torch.device("cpu"), image_rounds, image_updates).items():
            result[f"updates_per_s_{name}"] = round(rate, 2)
        if torch.cuda.is_available():
            for name, rate in measure_images(torch.device("cuda"), image_rounds, image_updates * 10).items():
                result[f"updates_per_s_{name}_cuda"] = round(rate, 2)
    if not args.json:
        print("[bench] full RLPD updates/s (critic + actor + temperature, UTD 1)", file=sys.stderr)
    print(json.dumps(result))
    return 0
