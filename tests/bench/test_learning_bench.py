import json
import os
import subprocess
import sys

import pytest
import torch

from iil_robot.bench.learning import fifth_rates, goals, steps_to, summarise
from iil_robot.learners.rlpd import native_bfloat16

ROW_KEYS = {"task", "level", "method", "seed", "success", "intervention_rate_first", "intervention_rate_last", "steps_to_80",
            "operator_steps", "takeovers", "requests_raised", "requests_needed", "critic_prefers_policy", "policy_operator_gap"}


def test_bench_learning_smoke_prints_one_json_object_with_rows_and_curves(tmp_path):
    command = [sys.executable, "-m", "iil_robot.cli", "bench", "learning", "--smoke", "--json", "--quiet", "--out", str(tmp_path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env={**os.environ, "MUJOCO_GL": "egl"})
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    rows = report["results"]
    assert {r["method"] for r in rows} == {"rlif", "hgdagger", "bc", "dagger", "iwr", "sirius", "dart", "pvp", "haco", "thrifty"}
    for r in rows:
        assert ROW_KEYS <= set(r)
        assert 0.0 <= r["success"] <= 1.0
        assert 0.0 <= r["intervention_rate_first"] <= 1.0 and 0.0 <= r["intervention_rate_last"] <= 1.0
        assert 0 <= r["takeovers"] <= r["operator_steps"]
        if r["method"] == "thrifty":  # robot-gated: requests raised, and those the operator judged needed
            assert 0 <= r["requests_needed"] <= r["requests_raised"]
        else:
            assert r["requests_raised"] is None and r["requests_needed"] is None
        if r["method"] == "rlif":  # the critics' view of the actor's actions against the operator's
            assert 0.0 <= r["critic_prefers_policy"] <= 1.0 and r["policy_operator_gap"] >= 0.0
        else:
            assert r["critic_prefers_policy"] is None and r["policy_operator_gap"] is None
    assert report["curves"] and all(os.path.exists(p) for p in report["curves"])
    assert "goals" in report["summary"]["reach"]
    assert 0.0 <= report["summary"]["reach"]["0.6"]["optimum_intervention_rate"] <= 1.0
    saved = [json.loads(line) for line in (tmp_path / "rows.jsonl").read_text().splitlines()]
    assert saved == rows  # written one by one as the runs ended


def test_bench_learning_runs_the_supervised_methods_with_the_mixture_head(tmp_path):
    command = [sys.executable, "-m", "iil_robot.cli", "bench", "learning", "--smoke", "--json", "--quiet", "--out", str(tmp_path),
               "--methods", "dagger", "sirius", "--head", "mixture", "--dagger-schedule", "linear"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env={**os.environ, "MUJOCO_GL": "egl"})
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert [r["method"] for r in report["results"]] == ["dagger", "sirius"]
    assert report["config"]["hgdagger"]["head"] == "mixture" and report["config"]["dagger"]["schedule"] == "linear"


def test_bench_learning_passes_rlif_overrides_to_the_learner(tmp_path):
    command = [sys.executable, "-m", "iil_robot.cli", "bench", "learning", "--smoke", "--json", "--quiet", "--out", str(tmp_path),
               "--methods", "rlif", "--cql-alpha", "2", "--backup-entropy", "off", "--mixed-precision",
               "--discount", "0.95", "--first-seed", "2"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env={**os.environ, "MUJOCO_GL": "egl"})
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert [(r["method"], r["seed"]) for r in report["results"]] == [("rlif", 2)]
    rlpd = report["config"]["rlpd"]
    assert (rlpd["cql_alpha"], rlpd["backup_entropy"], rlpd["discount"]) == (2.0, False, 0.95)
    # asked for bfloat16; the report says what the learner multiplied in on this CPU
    if native_bfloat16(torch.device("cpu")) is None:
        assert report["rlpd_precision"] == "bfloat16 matmuls"
    else:
        assert report["rlpd_precision"].startswith("float32: mixed_precision is off because this CPU has neither")


@pytest.mark.parametrize("points, expected", [
    ([(0, 0.1), (100, 0.5), (200, 0.8), (300, 0.9)], 200),
    ([(0, 0.9)], 0),
    ([(0, 0.1), (100, 0.79)], None),
    ([(0, 0.1), (100, 0.85), (200, 0.5)], 100),  # the first time it got there, even if it fell back
    ([], None),
])
def test_steps_to_80_is_the_first_evaluation_at_or_above_0_8(points, expected):
    assert steps_to(points) == expected


@pytest.mark.parametrize("flags, expected", [
    ([True] * 5 + [False] * 15 + [True, False, False, False, False], (1.0, 0.2)),  # n=25: fifths of 5
    ([True, True, False, False, False, False, False, False, False, False], (1.0, 0.0)),  # n=10: fifths of 2
    ([True, False, False], (1.0, 0.0)),  # n=3: a fifth is one step, rounded up
    ([True] * 7, (1.0, 1.0)),  # n=7: fifths of 2
    ([], (None, None)),
])
def test_intervention_rate_first_and_last_fifth(flags, expected):
    assert fifth_rates(flags) == expected


def test_goals_need_rlif_at_least_hgdagger_everywhere_and_1_3x_at_the_worst_level():
    cell = lambda rlif, hgd, drop: {"success": {"rlif": rlif, "hgdagger": hgd, "bc": 0.1},  # noqa: E731
                                    "rlif_over_hgdagger": round(rlif / hgd, 3), "rlif_intervention_drop": drop,
                                    "rlif_intervention_drop_attainable": 0.9}
    met = goals({"0.3": cell(0.65, 0.5, 0.85), "0.9": cell(0.9, 0.9, 0.9)})
    assert met == {"rlif_ge_hgdagger_every_level": True, "rlif_over_hgdagger_worst_level": 1.3,
                   "ratio_goal_met": True, "intervention_drop_goal_met": True, "intervention_drop_goal_attainable": True}
    missed = goals({"0.3": cell(0.6, 0.5, 0.5), "0.9": cell(0.8, 0.9, 0.9)})
    assert missed["rlif_ge_hgdagger_every_level"] is False and missed["ratio_goal_met"] is False
    assert missed["intervention_drop_goal_met"] is False


def test_summary_says_how_much_drop_the_operators_floor_leaves():
    """An operator that keeps control 30% of the time even over the scripted optimum leaves at most a 1 - 0.3/0.6 = 50%
    drop from a first fifth at 0.6: the 80% goal is out of reach there, whatever the learner."""
    rows = [{"task": "push", "level": level, "method": method, "success": 0.5, "intervention_rate_first": 0.6,
             "intervention_rate_last": 0.4} for level in (0.3, 0.9) for method in ("rlif", "hgdagger")]
    summary = summarise(rows, {("push", 0.3): 0.3, ("push", 0.9): 0.06})["push"]
    assert summary["0.3"]["optimum_intervention_rate"] == 0.3 and summary["0.3"]["rlif_intervention_drop_attainable"] == 0.5
    assert summary["0.9"]["rlif_intervention_drop_attainable"] == 0.9
    # from 0.6 to 0.4 against a floor of 0.3: two thirds of the attainable gap; against 0.06: 0.2 / 0.54 of it
    assert summary["0.3"]["rlif_intervention_gap_closed"] == pytest.approx(0.667, abs=1e-3)
    assert summary["0.9"]["rlif_intervention_gap_closed"] == pytest.approx(0.370, abs=1e-3)
    assert summary["goals"]["intervention_drop_goal_attainable"] is False
    assert summarise(rows)["push"]["0.3"]["rlif_intervention_drop_attainable"] is None  # no floors measured
    assert summarise(rows)["push"]["0.3"]["rlif_intervention_gap_closed"] is None
    at_floor = summarise(rows, {("push", 0.3): 0.6, ("push", 0.9): 0.7})["push"]  # the first fifth is at the floor already
    assert at_floor["0.3"]["rlif_intervention_gap_closed"] is None and at_floor["0.9"]["rlif_intervention_gap_closed"] is None


def test_bench_learning_smoke_has_an_image_based_row_per_camera_method(tmp_path):
    command = [sys.executable, "-m", "iil_robot.cli", "bench", "learning", "--smoke", "--images", "--json", "--quiet",
               "--out", str(tmp_path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env={**os.environ, "MUJOCO_GL": "egl"})
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert [(r["method"], r["images"]) for r in report["results"]] == [("rlif", True), ("hgdagger", True)]
    assert report["config"]["image_size"] == 24 and all(r["updates"] > 0 for r in report["results"])
    refused = subprocess.run(command + ["--methods", "pvp"], capture_output=True, text=True, timeout=120,
                             env={**os.environ, "MUJOCO_GL": "egl"})
    assert refused.returncode == 2 and "learn from state only" in refused.stderr
