"""``iil-robot bench learner --json``: full RLPD updates per second, batched critic ensemble vs a
Python loop over critics, in the same run.

One full update = one critic update + one actor update + one temperature update (UTD 1), with
the RLIF authors' shapes: observation 25, action 4, 10 critics of 256x256 with LayerNorm,
batch 256 (``--utd``, ``--hidden``, ``--num-qs`` and ``--batch-size`` change them). The variants
run back to back in rounds; ``updates_per_s_*`` is each variant's median round,
``speedup_*_vs_loop`` the median of the per-round ratios (with their range: on a shared machine the
rate of a whole round drifts, the ratio within a round much less). On CUDA the same
figures are added with a ``_cuda`` suffix.

``--busy-cores N`` also runs every round with N single-threaded busy loops beside it (as a robot PC's control loop
keeps a core busy); those figures carry a ``_busy_N`` suffix. Idle and busy rounds alternate, so both see the same
spells of a shared machine. The benchmark runs with the learner node's OpenMP settings (``config/openmp.py``, set
before torch loads); ``OMP_WAIT_POLICY=ACTIVE`` in the environment measures torch's default spin-waiting instead.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import replace

from iil_robot.config.openmp import OPENMP_DEFAULTS, openmp_defaults

openmp_defaults()  # before torch loads (a test that imported torch already measures with what it has)

import torch  # noqa: E402

from iil_robot.learners.buffers import Batch  # noqa: E402
from iil_robot.learners.cpu import cpu_info  # noqa: E402
from iil_robot.learners.hgdagger import HGDAggerConfig, HGDAggerLearner  # noqa: E402
from iil_robot.learners.memory import keep_freed_memory  # noqa: E402
from iil_robot.learners.rlpd import RLPDConfig, RLPDLearner, native_bfloat16  # noqa: E402

OBS_DIM, ACT_DIM = 25, 4


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print only the JSON object")
    parser.add_argument("--quick", action="store_true", help="a few updates only (a smoke run)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds per variant (default 5)")
    parser.add_argument("--updates", type=int, default=30, help="updates per round (default 30)")
    parser.add_argument("--compile", action="store_true", help="also time the batched learner under torch.compile")
    parser.add_argument("--busy-cores", type=int, default=0, metavar="N",
                        help="also time every variant with N single-threaded busy loops beside it (figures *_busy_N); "
                        "idle and busy rounds alternate")
    parser.add_argument("--no-loop", action="store_true", help="time only the batched learner (and the compiled ones)")
    parser.add_argument("--mixed-precision", action="store_true",
                        help="also time the batched learner (and with --compile the compiled one) with bfloat16 matrix "
                             "multiplies (rlpd.mixed_precision): *_bf16, where the CPU (or GPU) multiplies bfloat16 natively; "
                             "elsewhere \"mixed_precision\" in the JSON says why they were not timed")
    parser.add_argument("--hidden", type=int, nargs="+", help="critic and actor hidden sizes (default 256 256)")
    parser.add_argument("--num-qs", type=int, help="critics in the ensemble (default 10)")
    parser.add_argument("--batch-size", type=int, help="transitions per update (default 256)")
    parser.add_argument("--utd", type=int, default=1, help="critic updates per update (default 1); the learner node's update "
                        "is rlpd.utd_ratio of them and one actor update")
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


class BusyLoops:
    """N single-threaded busy-loop processes, started stopped; ``load(True)`` lets them run, ``load(False)`` stops them
    (SIGSTOP), so idle and busy rounds can alternate without starting processes. A context manager: they end by PID
    on exit, whatever happens."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.processes: list[subprocess.Popen] = []

    def __enter__(self) -> "BusyLoops":
        for _ in range(self.count):
            process = subprocess.Popen([sys.executable, "-c", "while True: pass"], stdin=subprocess.DEVNULL)
            self.processes.append(process)
            os.kill(process.pid, signal.SIGSTOP)
        return self

    def load(self, busy: bool) -> None:
        for process in self.processes:
            os.kill(process.pid, signal.SIGCONT if busy else signal.SIGSTOP)

    def __exit__(self, *exc) -> None:
        for process in self.processes:
            process.kill()  # SIGKILL ends a stopped process too
            process.wait()
        self.processes = []


def measure(device: torch.device, variants: dict[str, RLPDConfig], rounds: int, updates: int,
            busy: BusyLoops | None = None) -> dict[str, list[float]]:
    """Updates/s of each variant in each round. In a round the variants run back to back, in reversed order every
    other round, so that a slow spell of a shared machine hits the variants of one round alike. With ``busy`` every
    round runs once idle and once with its busy loops running (rates ``NAME_busy_N``)."""
    learners = {name: RLPDLearner(OBS_DIM, ACT_DIM, config, device=device) for name, config in variants.items()}
    size = next(iter(variants.values())).batch_size
    batches = [_batch(device, size, seed) for seed in range(4)]
    for learner in learners.values():  # warm-up; a compiled variant waits for its child's compile, then switches
        for i in range(3):
            learner.update(batches[i % 4])
        if learner.wait_for_fusion() == "compiling":
            learner.update(batches[0])
    _sync(device)
    loads = [""] if busy is None else ["", f"_busy_{busy.count}"]
    rates: dict[str, list[float]] = {name + load: [] for load in loads for name in learners}
    for round_ in range(rounds):
        for load in loads if round_ % 2 == 0 else reversed(loads):
            if busy is not None:
                busy.load(bool(load))
            order = list(learners.items()) if round_ % 2 == 0 else list(reversed(learners.items()))
            for name, learner in order:
                start = time.perf_counter()
                for i in range(updates):
                    learner.update(batches[i % 4])
                _sync(device)
                rates[name + load].append(updates / (time.perf_counter() - start))
    if busy is not None:
        busy.load(False)
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
    pairs = [(name, "loop") for name in rates if name != "loop" and "loop" in rates]
    if {"compiled", "loop_compiled"} <= rates.keys():
        pairs.append(("compiled", "loop_compiled"))
    for name, baseline in pairs:
        ratio = speedup(rates, name, baseline)
        figures[f"speedup_{name}_vs_{baseline}{suffix}"] = round(ratio["median"], 3)
        figures[f"speedup_{name}_vs_{baseline}_range{suffix}"] = [round(ratio["min"], 3), round(ratio["max"], 3)]
    return figures


GEMM_OPS = {"aten::mm": torch.mm, "aten::addmm": torch.addmm, "aten::bmm": torch.bmm, "aten::baddbmm": torch.baddbmm}
"""The matrix multiplies an update runs, by their profiler names."""


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


def update_multiplies(device: torch.device, config: RLPDConfig) -> list[tuple[str, list[list[int]]]]:
    """The matrix multiplies of one ``config`` update, in order: each one's profiler name and input shapes."""
    from torch.profiler import ProfilerActivity, profile

    learner = RLPDLearner(OBS_DIM, ACT_DIM, config, device=device)
    batch = _batch(device, config.batch_size * config.utd_ratio, 0)
    learner.update(batch)
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        learner.update(batch)
    return [(e.name, [list(shape) for shape in e.input_shapes if shape]) for e in prof.events() if e.name in GEMM_OPS]


def gemm_ceiling(device: torch.device, config: RLPDConfig, repeats: int) -> float:
    """Updates/s if an update were nothing but its matrix multiplies: ``update_multiplies`` replayed alone on tensors
    of their shapes, ``repeats`` times. No step that runs the same multiplies with torch's kernels, fused or not, can
    pass it."""
    calls = [(GEMM_OPS[name], [torch.randn(*shape, device=device) for shape in shapes])
             for name, shapes in update_multiplies(device, config)]

    def multiplies() -> None:
        for op, args in calls:
            op(*args)

    return 1.0 / seconds_per_call(multiplies, device, repeats, warm_up=3)


def seconds_per_call(step, device: torch.device, repeats: int, warm_up: int = 1) -> float:
    """Mean wall time of ``repeats`` calls of ``step`` after ``warm_up`` untimed ones, the device synchronised."""
    for _ in range(warm_up):
        step()
    _sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        step()
    _sync(device)
    return (time.perf_counter() - start) / repeats


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

    return {name: seconds_per_call(step, device, repeats) * 1e3 for name, step in (("batched", stacked), ("loop", looped))}


def load_figures(rates: dict[str, list[float]], variants: dict[str, RLPDConfig], busy_cores: int,
                 suffix: str = "") -> dict[str, object]:
    """``rate_figures`` of the idle rounds, then of the busy ones (``_busy_N``) when they ran."""
    loads = [""] + ([f"_busy_{busy_cores}"] if busy_cores else [])
    figures: dict[str, object] = {}
    for load in loads:
        figures |= rate_figures({name: rates[name + load] for name in variants}, suffix=load + suffix)
    return figures


def cpu_description() -> str:
    """The CPU's model and the vector extensions its matrix multiplies can use (figures differ by them: the same
    machine name has come with and without AVX-512 BF16)."""
    try:
        model, flags = cpu_info()
    except OSError as err:
        return f"unknown ({err})"
    vector = [flag for flag in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if flag in flags]
    return f"{model} ({', '.join(vector) or 'no AVX2'})"


def timed_as_asked(variants: dict[str, RLPDConfig], device: torch.device) -> tuple[dict[str, RLPDConfig], str]:
    """The variants that run as configured on ``device``, and why any were left out: where ``device`` does not
    multiply bfloat16 natively the learner keeps ``mixed_precision`` variants in float32, and their ``_bf16`` figures
    would time float32 a second time under a bfloat16 name."""
    unsupported = native_bfloat16(device)
    if unsupported is None or not any(config.mixed_precision for config in variants.values()):
        return variants, ""
    kept = {name: config for name, config in variants.items() if not config.mixed_precision}
    return kept, f"not timed: the learner would stay in float32 here, because {unsupported}"


def run(args: argparse.Namespace) -> int:
    if args.busy_cores < 0:
        raise SystemExit(f"--busy-cores {args.busy_cores}: expected 0 or more busy loops")
    torch.set_num_threads(args.threads)
    keep_freed_memory()  # as the learner node does (see learners/memory.py)
    rounds, updates = (1, 3) if args.quick else (args.rounds, args.updates)
    sizes = {k: v for k, v in (("hidden", tuple(args.hidden or ())), ("num_qs", args.num_qs), ("batch_size", args.batch_size))
             if v}
    base = RLPDConfig(utd_ratio=args.utd, num_min_qs=min(2, sizes.get("num_qs", 2)), **sizes)
    variants = {"batched": base} | ({} if args.no_loop else {"loop": replace(base, critic_impl="loop")})
    if args.compile:
        variants["compiled"] = replace(base, compile=True)
        if not args.no_loop:
            variants["loop_compiled"] = replace(base, critic_impl="loop", compile=True)  # each critic compiled
    if args.mixed_precision:
        variants |= {f"{name}_bf16": replace(variants[name], mixed_precision=True)
                     for name in ("batched", "compiled") if name in variants}
    result: dict[str, object] = {"device": "cpu", "cpu": cpu_description(), "threads": args.threads,
                                 "obs_dim": OBS_DIM, "act_dim": ACT_DIM, "num_qs": base.num_qs, "hidden": list(base.hidden),
                                 "batch_size": base.batch_size, "utd_ratio": base.utd_ratio, "busy_cores": args.busy_cores,
                                 "openmp": {name: os.environ.get(name, "") for name in OPENMP_DEFAULTS}}
    cpu_variants, skipped = timed_as_asked(variants, torch.device("cpu"))
    if skipped:
        result["mixed_precision"] = skipped
        if not args.json:
            print(f"[bench] {skipped}", file=sys.stderr)
    with BusyLoops(args.busy_cores) as busy:
        rates = measure(torch.device("cpu"), cpu_variants, rounds, updates, busy if args.busy_cores else None)
    result |= load_figures(rates, cpu_variants, args.busy_cores)
    if args.profile:
        profiled = 3 if args.quick else 20
        loop_share = gemm_share(torch.device("cpu"), replace(base, critic_impl="loop"), profiled)
        result["gemm_share_loop"] = round(loop_share, 3)
        result["gemm_share_batched"] = round(gemm_share(torch.device("cpu"), base, profiled), 3)
        result["batched_ceiling_vs_loop"] = round(1.0 / loop_share, 3)
        result["gemm_ceiling_updates_per_s"] = round(gemm_ceiling(torch.device("cpu"), base, 3 if args.quick else 50), 2)
        for name, ms in widest_layer_gemm_ms(torch.device("cpu"), repeats=3 if args.quick else 50).items():
            result[f"widest_layer_gemm_ms_{name}"] = round(ms, 3)
    if torch.cuda.is_available():
        result["device"] = "cpu+cuda"
        cuda_variants, skipped = timed_as_asked(variants, torch.device("cuda"))
        if skipped:
            result["mixed_precision_cuda"] = skipped
        result |= load_figures(measure(torch.device("cuda"), cuda_variants, rounds, updates * 4), cuda_variants, 0,
                               suffix="_cuda")
    if args.images:
        result["image"] = list(IMAGE)
        image_rounds, image_updates = (1, 2) if args.quick else (3, 5)
        for name, rate in measure_images(torch.device("cpu"), image_rounds, image_updates).items():
            result[f"updates_per_s_{name}"] = round(rate, 2)
        if torch.cuda.is_available():
            for name, rate in measure_images(torch.device("cuda"), image_rounds, image_updates * 10).items():
                result[f"updates_per_s_{name}_cuda"] = round(rate, 2)
    if not args.json:
        print(f"[bench] full RLPD updates/s (critic + actor + temperature, UTD {base.utd_ratio})", file=sys.stderr)
    print(json.dumps(result))
    return 0
