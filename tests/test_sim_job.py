"""Smoke run of the main job as a user types it."""
import os
import re
import subprocess
import sys


def test_main_job_shows_the_arm_commands_and_a_takeover(tmp_path):
    env = dict(os.environ)
    env.pop("ROS_AUTOMATIC_DISCOVERY_RANGE", None)  # the job must set it itself
    proc = subprocess.run(
        [sys.executable, "-m", "iil_robot.cli", "sim", "--duration", "7", "--domain-id", "93", "--run-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=120, env=env,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    out = proc.stdout
    assert "DDS on loopback" in out
    assert re.search(r"control=policy \(policy\)", out)
    assert ">>> operator took over (spacemouse)" in out
    summary = re.search(r"stopped all nodes\. (\d+) step records, (\d+) arm commands", out)
    assert summary and int(summary.group(1)) > 50 and int(summary.group(2)) >= int(summary.group(1))
    # every node process logged to the run folder and was stopped
    assert {p.name for p in tmp_path.iterdir()} >= {"mux.log", "spacemouse_gate.log", "policy.log", "scripted_input.log"}
