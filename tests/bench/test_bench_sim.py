import json
import os
import subprocess
import sys


def test_bench_sim_prints_one_json_object_through_the_cli():
    command = [sys.executable, "-m", "iil_robot.cli", "bench", "sim", "--json", "--episodes", "3",
               "--speed-steps", "100", "--image-size", "32", "32", "--workers", "2"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=180, env={**os.environ, "MUJOCO_GL": "egl"})
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["steps_per_s"] > 0
    assert report["steps_per_s_images"] is None or report["steps_per_s_images"] > 0
    assert set(report["expert_success"]) == {"reach", "push", "pick_and_place"}
    for by_level in report["expert_success"].values():
        assert set(by_level) == {"1.0", "0.9", "0.7", "0.6", "0.3"}
        assert all(0.0 <= rate <= 1.0 for rate in by_level.values())
    assert report["episodes"] == 3
