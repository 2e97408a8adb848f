"""Smoke runs of the learner benchmarks: each prints one JSON object with its keys."""
import json
import os
import subprocess
import sys

import pytest


@pytest.mark.parametrize("argv, keys", [
    (["learner", "--threads", "1"], ["updates_per_s_batched", "updates_per_s_loop", "speedup_batched_vs_loop", "device", "cpu"]),
    (["learner", "--threads", "1", "--profile"], ["gemm_share_loop", "gemm_share_batched", "batched_ceiling_vs_loop",
                                                   "gemm_ceiling_updates_per_s", "widest_layer_gemm_ms_batched",
                                                   "widest_layer_gemm_ms_loop"]),
    (["learner", "--threads", "1", "--profile", "--no-loop"], ["gemm_share_loop", "gemm_ceiling_updates_per_s"]),
    (["learner", "--threads", "1", "--images"], ["updates_per_s_rlpd_images", "updates_per_s_hgdagger_images"]),
    (["learner", "--threads", "1", "--busy-cores", "1", "--hidden", "16", "16", "--num-qs", "2", "--batch-size", "16"],
     ["updates_per_s_batched", "updates_per_s_batched_busy_1", "updates_per_s_loop_busy_1", "speedup_batched_vs_loop_busy_1"]),
    (["sync"], ["sync_p50_ms", "sync_p99_ms", "tick_gap_max_ms_idle",
                                     "tick_gap_max_ms_under_bad_weights", "bad_weights_refused"]),
    (["jitter"], ["tick_jitter_p99_ms", "tick_jitter_p99_ms_idle", "arrival_jitter_p99_ms"]),
])
def test_smoke_run_prints_one_json_object(argv, keys, domain_id):
    env = dict(os.environ, ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    proc = subprocess.run([sys.executable, "-m", "iil_robot.cli", "bench", *argv, "--json", "--quick",
                           *(["--domain-id", str(domain_id)] if argv[0] in ("sync", "jitter") else [])],
                          capture_output=True, text=True, timeout=280, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    for key in keys:
        assert key in result
        assert key in ("device", "cpu") or result[key] > 0


def test_busy_loops_run_only_while_loaded_and_end_with_the_benchmark():
    import time

    from iil_robot.bench.learner import BusyLoops

    def settle(processes, states, timeout=30.0):  # signals arrive asynchronously: poll /proc/PID/stat's state field
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            seen = []
            for p in processes:
                with open(f"/proc/{p.pid}/stat") as f:
                    seen.append(f.read().rsplit(")", 1)[1].split()[0])
            if all(state in states for state in seen):
                return True
        return False

    with BusyLoops(2) as busy:
        processes = list(busy.processes)
        assert len(processes) == 2 and settle(processes, "T")  # started stopped
        busy.load(True)
        assert settle(processes, "RS")
        busy.load(False)
        assert settle(processes, "T")
    assert all(p.poll() is not None for p in processes)


def test_the_gemm_share_counts_only_matrix_multiplies():
    import torch

    from iil_robot.bench.learner import gemm_share
    from iil_robot.learners.rlpd import RLPDConfig

    torch.set_num_threads(1)
    share = gemm_share(torch.device("cpu"), RLPDConfig(hidden=(64, 64), num_qs=2, utd_ratio=1), 2)
    assert 0.0 < share < 1.0


def test_the_gemm_ceiling_replays_the_updates_own_multiplies():
    import torch

    from iil_robot.bench.learner import update_multiplies
    from iil_robot.learners.rlpd import RLPDConfig

    torch.set_num_threads(1)
    calls = update_multiplies(torch.device("cpu"), RLPDConfig(hidden=(64, 48), num_qs=3, batch_size=32, utd_ratio=1))
    # the critics' hidden layer, stacked: forward (with its bias) for the critic loss and the actor loss, and the
    # critic loss's weight gradient
    assert calls.count(("aten::baddbmm", [[3, 1, 48], [3, 32, 64], [3, 64, 48]])) == 2
    assert ("aten::bmm", [[3, 64, 32], [3, 32, 48]]) in calls
    # the target: the random subset of 2 critics only
    assert ("aten::baddbmm", [[2, 1, 48], [2, 32, 64], [2, 64, 48]]) in calls
    assert all(name in ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm") for name, _ in calls)


def test_the_speedup_pairs_the_variants_round_by_round():
    from iil_robot.bench.learner import speedup

    # the machine halves its speed in the middle round: the ratio within each round stays 1.5
    rates = {"batched": [30.0, 15.0, 30.0], "loop": [20.0, 10.0, 20.0]}
    assert speedup(rates, "batched") == {"median": 1.5, "min": 1.5, "max": 1.5}
    rates = {"batched": [30.0, 12.0, 33.0], "loop": [20.0, 12.0, 30.0]}
    assert speedup(rates, "batched") == pytest.approx({"median": 1.1, "min": 1.0, "max": 1.5})


def test_the_compiled_step_is_also_paired_with_the_compiled_loop():
    from iil_robot.bench.learner import rate_figures

    figures = rate_figures({"batched": [30.0], "loop": [20.0], "compiled": [40.0], "loop_compiled": [25.0]})
    assert figures["speedup_compiled_vs_loop"] == 2.0
    assert figures["speedup_compiled_vs_loop_compiled"] == 1.6
    assert figures["speedup_loop_compiled_vs_loop"] == 1.25
    assert "speedup_compiled_vs_loop_compiled" not in rate_figures({"batched": [30.0], "loop": [20.0], "compiled": [40.0]})


def test_bfloat16_variants_are_left_out_where_the_learner_would_stay_in_float32(monkeypatch):
    from dataclasses import replace

    from iil_robot.bench import learner as bench
    from iil_robot.learners.rlpd import RLPDConfig

    variants = {"batched": RLPDConfig(), "batched_bf16": replace(RLPDConfig(), mixed_precision=True)}
    monkeypatch.setattr(bench, "native_bfloat16", lambda device: "this CPU has neither AVX-512 BF16 nor AMX: ...")
    kept, why = bench.timed_as_asked(variants, bench.torch.device("cpu"))
    assert list(kept) == ["batched"]
    assert why == "not timed: the learner would stay in float32 here, because this CPU has neither AVX-512 BF16 nor AMX: ..."
    monkeypatch.setattr(bench, "native_bfloat16", lambda device: None)
    assert bench.timed_as_asked(variants, bench.torch.device("cpu")) == (variants, "")
