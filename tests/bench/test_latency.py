"""The latency benchmark: its matching arithmetic, and a smoke run of the real command."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from iil_robot.bench.latency import handover_extra_ticks, match_latencies, percentiles
from iil_robot.command.gate import GateConfig, apply_deadband
from iil_robot.nodes.peers.latency import SEQ_SCALE


def test_latencies_are_matched_by_sequence_and_first_receipt():
    sent = [(1, 10.0), (2, 10.01), (3, 10.02)]
    received = [(1 * SEQ_SCALE, 0, 10.0005), (1 * SEQ_SCALE, 0, 10.05), (3 * SEQ_SCALE, 0, 10.021), (0.0, 0, 10.03)]
    latencies, lost = match_latencies(sent, received)
    assert latencies == pytest.approx([0.0005, 0.001]) and lost == 1


def test_percentiles_in_milliseconds():
    p = percentiles([0.001] * 99 + [0.010])
    assert p["p50"] == pytest.approx(1.0) and p["max"] == pytest.approx(10.0)


def ramp_input(ys, t0=100.0, dt=0.01):
    return [(i, y, t0 + i * dt) for i, y in enumerate(ys)]


@pytest.mark.parametrize("delay_inputs, expected", [(0, 0), (1, 1), (2, 2)])
def test_handover_counts_input_messages_between_the_crossing_and_the_first_human_output(delay_inputs, expected):
    gate = GateConfig()
    ys = [0.0, 0.0, 0.1, 0.2, 0.3, 0.4, 0.5]  # crossing (> 0.25) at ramp index 2
    sent = ramp_input(ys)
    rest = 2
    reaching = rest + 2 + delay_inputs  # which input's value reaches the arm first
    y_out = apply_deadband(float(np.float32(ys[reaching])), gate.deadband) * gate.axis_scale[1]  # Joy axes are float32
    received = [(0.0, 0.0, 100.001), (0.0, y_out, sent[reaching][2] + 0.002)]
    trials = handover_extra_ticks(sent, per_trial=len(ys), rest=rest, received=received, gate=gate)
    assert trials[0]["extra_ticks"] == expected


def test_smoke_run_of_the_real_command_prints_one_json_object(tmp_path, domain_block):
    env = dict(os.environ, ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    proc = subprocess.run([sys.executable, "-m", "iil_robot.cli", "bench", "latency", "--json", "--quick",
                           "--domain-id", str(domain_block[0])],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    for key in ("hop_p50_ms", "hop_p99_ms", "mux_p50_ms_100hz", "mux_p99_ms_100hz", "mux_max_ms_100hz",
                "mux_p50_ms_1khz", "mux_p99_ms_1khz", "mux_max_ms_1khz", "handover_extra_ticks"):
        assert key in result
    assert 0 < result["hop_p50_ms"] < 100 and 0 < result["mux_p50_ms_1khz"] < 100
    # a smoke run, not the benchmark: under CPU load depth-1 commands are superseded, but some must arrive
    assert result["sent_100hz"] - result["mux_lost_100hz"] > 0.5 * result["sent_100hz"]
    assert result["sent_1khz"] - result["mux_lost_1khz"] > 0
    # every takeover reached the arm, never before the input that crossed the engagement threshold; how many
    # ticks after it is the benchmark's figure (handover_0_extra_ticks), not a test: 2 loaded cores delay it
    assert all(extra is not None and extra >= 0 for extra in result["handover_extra_ticks_per_trial"])
    # the observer: out of it no earlier than the input was sent, and a subscriber has it no earlier than it left
    assert 0 < result["observer_p50_ms"] <= result["observer_delivered_p50_ms"] < 100
    assert result["observer_added_p99_ms"] == result["observer_p99_ms"] - result["observer_hop_p99_ms"]
