"""A smoke run of `iil-robot soak`: the main job's graph under bad inputs for half a minute, one JSON object."""
import json
import os
import subprocess
import sys

from iil_robot.cli.sim import STOP_ORDER

NODES = set(STOP_ORDER) - {"arm_status", "camera"}  # the fetch profile relays no driver status; no camera by default
"""Every node of the main job's graph."""


def test_a_short_soak_keeps_every_node_up_refuses_every_bad_parameter_and_loses_no_tick(tmp_path, domain_id):
    env = dict(os.environ, ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    proc = subprocess.run([sys.executable, "-m", "iil_robot.cli", "soak", "--minutes", "0.5", "--warmup", "10",
                           "--sample-period", "5", "--json", "--domain-id", str(domain_id), "--run-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode in (0, 3), proc.stderr[-3000:]  # 3: a criterion not met, checked one by one below
    result = json.loads(proc.stdout)
    assert set(result["processes"]) == NODES
    assert all(p["restarts"] == 0 for p in result["processes"].values()), proc.stderr[-3000:]
    assert all(p["rss_mb_end"] > 0 for p in result["processes"].values())
    times = result["sample_times_s"]  # a sample every 5 s from the start, and one at the end
    assert len(times) >= 6 and times[0] == 0 and times[-1] >= 29
    for p in result["processes"].values():
        assert len(p["rss_mb_samples"]) == len(times) and p["rss_mb_samples"][-1] == p["rss_mb_end"]
        assert p["rss_growth_pct_second_half"] is not None
        assert 10 <= p["warmup_s"] <= 15  # --warmup, or the learner's first weights capped at a third of the run
    assert set(result["sent"]) >= {"proposals", "steps", "observations", "events", "weights", "parameters"}
    assert result["parameters_refused"] > 0 and result["parameters_accepted"] == 0
    assert result["step_records"] > 100 and result["ticks_missing"] == 0
    logs = {name: (tmp_path / "logs" / f"{name}.log").read_text() for name in ("mux", "policy", "learner")}
    assert "undecodable proposal" in logs["mux"] and "refused weights" in logs["policy"]
    assert "undecodable step record" in logs["learner"]


def test_the_learner_warms_up_until_it_drives_the_arm_and_no_compile_is_pending():
    from iil_robot.nodes.peers.soak import SoakCounts

    counts = SoakCounts(learner_fusion="on")
    assert not counts.learner_settled()  # no learned action yet
    counts.first_learned_action = 12.0
    for pending in (None, "waiting", "compiling", "switching"):
        counts.learner_fusion = pending
        assert not counts.learner_settled(), pending
    for done in ("", "on", "off: the compile failed, updates stay eager: x"):
        counts.learner_fusion = done
        assert counts.learner_settled(), done
