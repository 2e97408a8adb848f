"""`iil-robot bench workspace`: the simulated arm driven into each wall stops within the overshoot target."""
import json
import os
import subprocess
import sys

import pytest

from iil_robot.bench.workspace import TARGET_OVERSHOOT_MM, WorkspaceBenchConfig, run_bench

SMALL = WorkspaceBenchConfig(diagonal=False, max_seconds=2.0)


def test_braking_stops_the_arm_within_the_overshoot_target_at_every_wall():
    report = run_bench(SMALL)
    assert report["runs"] == 6 and report["all_stopped"]
    assert report["max_overshoot_mm"] <= TARGET_OVERSHOOT_MM
    assert 0.0 < report["max_decel_mps2"] <= SMALL.linear_decel * 1.2  # braked, not stopped dead
    assert report["max_final_gap_mm"] < 5.0  # and not far before the wall


def test_the_bench_sees_an_arm_that_is_cut_off_at_the_wall_instead_of_braking():
    report = run_bench(WorkspaceBenchConfig(diagonal=False, max_seconds=2.0, linear_decel=100.0, latency=0.0))
    assert report["max_overshoot_mm"] > TARGET_OVERSHOOT_MM
    assert report["max_decel_mps2"] > 3.0


@pytest.mark.timeout(120)
def test_bench_workspace_prints_one_json_object_through_the_cli():
    command = [sys.executable, "-m", "iil_robot.cli", "bench", "workspace", "--json", "--straight-only", "--seconds", "1.5"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, env={**os.environ, "MUJOCO_GL": "egl"})
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["benchmark"] == "workspace" and report["runs"] == 6
    assert {"max_overshoot_mm", "max_decel_mps2"} <= set(report)
