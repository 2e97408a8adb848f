"""`iil-robot bench workspace`: the simulated arm driven into each wall, and turned towards each orientation limit,
stops within the overshoot targets."""
import json
import os
import subprocess
import sys

import pytest

from iil_robot.bench.workspace import (
    TARGET_ORIENTATION_OVERSHOOT_DEG,
    TARGET_OVERSHOOT_MM,
    WorkspaceBenchConfig,
    rotation_report,
    run_bench,
)
from iil_robot.command import in_flight, safety
from iil_robot.sim.tasks import FetchTaskConfig, FetchTaskEnv

SMALL = WorkspaceBenchConfig(diagonal=False, max_seconds=2.0)


@pytest.fixture(scope="module")
def small_report() -> dict:
    return run_bench(SMALL)


def test_braking_stops_the_arm_within_the_overshoot_target_at_every_wall(small_report):
    report = small_report
    assert report["runs"] == 6 and report["all_stopped"]
    assert report["max_overshoot_mm"] <= TARGET_OVERSHOOT_MM
    assert 0.0 < report["max_decel_mps2"] <= SMALL.linear_decel * 1.2  # braked, not stopped dead
    assert report["max_final_gap_mm"] < 5.0  # and not far before the wall


def test_braking_stops_the_turning_arm_within_the_overshoot_target_at_every_orientation_limit(small_report):
    report = small_report
    assert report["rotations"] == 10 and report["all_rotations_stopped"]
    assert report["max_orientation_overshoot_deg"] <= TARGET_ORIENTATION_OVERSHOOT_DEG
    assert report["orientation_target_met"]
    assert 0.0 < report["max_angular_decel_radps2"] <= SMALL.angular_decel * 1.2  # braked, not stopped dead
    assert report["max_orientation_final_gap_deg"] < 1.0  # and not far before the limit
    assert report["sim_final_rotation_lag_deg"] < 0.2  # the simulated arm ends where the commands turned it


def test_the_bench_sees_an_arm_that_is_cut_off_at_the_wall_instead_of_braking():
    # cut off one tick late: counting the command in flight, a cut-off at the wall would stop the ideal simulated
    # arm (which needs no braking distance) right there
    report = run_bench(WorkspaceBenchConfig(diagonal=False, max_seconds=2.0, linear_decel=100.0, angular_decel=200.0,
                                            latency=0.0, arm_delay=0.1))
    assert report["max_overshoot_mm"] > TARGET_OVERSHOOT_MM
    assert report["max_decel_mps2"] > 3.0
    assert report["max_orientation_overshoot_deg"] > 2 * TARGET_ORIENTATION_OVERSHOOT_DEG
    assert not report["orientation_target_met"]
    assert report["max_angular_decel_radps2"] > 2 * SMALL.angular_decel


def test_an_arm_that_acts_as_late_as_the_configured_latency_allows_stops_within_the_targets():
    report = run_bench(WorkspaceBenchConfig(diagonal=False, max_seconds=2.0, arm_delay=0.2))  # period + latency
    assert report["arm_delay_s"] == 0.2 and report["all_stopped"] and report["all_rotations_stopped"]
    assert report["max_overshoot_mm"] <= TARGET_OVERSHOOT_MM
    assert report["max_orientation_overshoot_deg"] <= TARGET_ORIENTATION_OVERSHOOT_DEG


def test_the_bench_sees_braking_that_forgets_the_commands_in_flight(monkeypatch):
    monkeypatch.setattr(in_flight.SentCommands, "in_flight", lambda self, now, window: (0.0,) * 6)
    report = run_bench(WorkspaceBenchConfig(diagonal=False, max_seconds=2.0, arm_delay=0.2))
    assert report["max_overshoot_mm"] > 5 * TARGET_OVERSHOOT_MM
    assert report["max_orientation_overshoot_deg"] > 3 * TARGET_ORIENTATION_OVERSHOOT_DEG


@pytest.mark.parametrize("arm_delay", [0.0, 0.07, -0.05])
def test_an_arm_delay_that_is_not_a_whole_number_of_periods_is_refused_by_name(arm_delay):
    with pytest.raises(ValueError, match="arm delay .* whole number of control periods"):
        run_bench(WorkspaceBenchConfig(arm_delay=arm_delay))


def test_the_rotation_runs_see_an_orientation_limit_that_does_nothing(monkeypatch):
    monkeypatch.setattr(safety, "_orientation_scale", lambda *args: 1.0)
    env = FetchTaskEnv(FetchTaskConfig("reach", SMALL.rate, ends_episodes=False))
    try:
        report = rotation_report(env, WorkspaceBenchConfig(max_seconds=1.0))
    finally:
        env.close()
    assert not report["all_rotations_stopped"]
    assert report["max_orientation_overshoot_deg"] > 10.0


@pytest.mark.timeout(120)
def test_bench_workspace_prints_one_json_object_through_the_cli():
    command = [sys.executable, "-m", "iil_robot.cli", "bench", "workspace", "--json", "--straight-only", "--seconds", "1.5",
               "--arm-delay", "0.1"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, env={**os.environ, "MUJOCO_GL": "egl"})
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["benchmark"] == "workspace" and report["runs"] == 6 and report["rotations"] == 10
    assert report["arm_delay_s"] == 0.1
    assert {"max_overshoot_mm", "max_decel_mps2", "max_orientation_overshoot_deg", "max_angular_decel_radps2",
            "all_rotations_stopped", "target_orientation_overshoot_deg"} <= set(report)
