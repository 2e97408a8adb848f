"""``iil-robot bench latency --json``: latency of the safe command path across processes.

Measured in one run, on this machine, DDS on loopback:

- ``hop_*``: a bare rclpy publisher -> subscriber hop between two processes;
- ``mux_*``: human input published (``human/cmd``, operator engaged) -> arm command received
  (``arm/cmd``), through the mux process. The same messages are sent on both paths at the same
  instant, at 100 Hz and at 1 kHz; keys carry the rate (``_100hz``, ``_1khz``), and the
  unsuffixed ``hop_*``/``mux_*`` keys repeat the 1 kHz figures;
- ``handover_extra_ticks``: SpaceMouse input (``spacenav/joy`` at 100 Hz) through the real gate
  and mux: the first arm command carrying the operator's input, counted in input messages after
  the one that crossed the engagement threshold (0 = that very message drove the arm), worst
  over the trials.

- ``observer_*``: a ``joint_states`` message published (its input stamp) -> the observation it
  completes leaving the observer process (the observation's DDS source timestamp: when the observer
  wrote it), next to a bare hop of the same JointState to a subscriber at the same instant, at
  100 Hz; ``observer_added_p99_ms`` is the observer's p99 minus the hop's: what the observer adds
  over a hop straight from the driver. ``observer_delivered_*`` time the observation to its
  receipt by a subscriber, one hop more (what the policy sees).

The mux runs with its shipped parameter file, acceleration limits off (so each output value
maps back to one input). Targets: mux p99 <= 3x the hop p99 at each rate; handover 0 extra ticks;
the observer adds at most 2 ms at p99.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from iil_robot.cli.graph import Graph, NodeSpec, add_domain_argument, loopback_env
from iil_robot.command.gate import GateConfig, apply_deadband
from iil_robot.config import config_path
from iil_robot.nodes.peers.latency import SEQ_SCALE

PEERS = "iil_robot.nodes.peers.latency"
RATES = {"100hz": 100.0, "1khz": 1000.0}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print only the JSON object")
    parser.add_argument("--quick", action="store_true", help="fewer messages and trials (a smoke run)")
    add_domain_argument(parser, "first of three ROS domains to use (default 61)", default=61, count=3)


def _log(args: argparse.Namespace, text: str) -> None:
    if not args.json:
        print(f"[bench] {text}", file=sys.stderr, flush=True)


def _run_peer(env: dict, *argv: str, timeout: float) -> None:
    subprocess.run([sys.executable, "-m", PEERS, *argv], env=env, check=True, timeout=timeout)


def _start_sink(env: dict, work: Path, topics: list[str], wait: list[str]) -> tuple[subprocess.Popen, Path]:
    out, ready = work / f"sink-{time.monotonic_ns()}.json", work / f"ready-{time.monotonic_ns()}"
    proc = subprocess.Popen([sys.executable, "-m", PEERS, "sink", "--topics", *topics, "--wait", *wait,
                             "--out", str(out), "--ready", str(ready)], env=env)
    deadline = time.monotonic() + 60.0
    while not ready.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the benchmark's subscriber process did not start")
        time.sleep(0.05)
    return proc, out


def _stop_sink(proc: subprocess.Popen, out: Path) -> dict:
    proc.send_signal(2)
    proc.wait(timeout=30)
    return json.loads(out.read_text())


def percentiles(latencies_s: list[float]) -> dict[str, float]:
    ms = np.asarray(latencies_s) * 1e3
    return {"p50": float(np.percentile(ms, 50)), "p99": float(np.percentile(ms, 99)), "max": float(ms.max())}


def match_latencies(sent: list[tuple[int, float]], received: list[tuple[float, float, float]]) -> tuple[list[float], int]:
    """Latency of each sent sequence number (first receipt), and how many never arrived."""
    first: dict[int, float] = {}
    for x, _y, t in received:
        seq = round(x / SEQ_SCALE)
        if seq > 0 and seq not in first:
            first[seq] = t
    latencies = [first[seq] - t for seq, t in sent if seq in first]
    return latencies, len(sent) - len(latencies)


def handover_extra_ticks(sent: list[tuple[int, float, float]], per_trial: int, rest: int,
                         received: list[tuple[float, float, float]], gate: GateConfig) -> list[dict]:
    """Per trial: the input index whose value first reached the arm, minus the one that engaged."""
    scale = gate.axis_scale[1] * gate.axis_sign[1]
    trials = []
    for start in range(0, len(sent) - per_trial + 1, per_trial):
        # sensor_msgs/Joy axes are float32 on the wire: the gate sees the rounded values
        ramp = [(i, float(np.float32(y)), t) for i, y, t in sent[start + rest:start + per_trial]]
        crossing = next(i for i, (_, y, _) in enumerate(ramp) if y > gate.engage_threshold)
        expected = [apply_deadband(y, gate.deadband) * scale for _, y, _ in ramp]
        t0 = ramp[0][2]
        t_end = ramp[-1][2] + 0.5
        first = next(((y, t) for _x, y, t in received if t0 <= t <= t_end and y != 0.0), None)
        if first is None:
            trials.append({"extra_ticks": None, "latency_ms": None})
            continue
        index = min(range(len(ramp)), key=lambda i: abs(expected[i] - first[0]))
        if abs(expected[index] - first[0]) > 1e-9:
            raise RuntimeError(f"arm command y={first[0]} matches no input of the ramp")
        trials.append({"extra_ticks": index - crossing, "latency_ms": (first[1] - ramp[crossing][2]) * 1e3})
    return trials


def _mux_spec(**parameters) -> NodeSpec:
    fixed = {"limits.max_linear_accel": 0.0, "limits.max_angular_accel": 0.0}
    return NodeSpec("mux", "iil_robot.nodes.mux", params_files=(str(config_path("mux.yaml")),),
                    parameters={**fixed, **parameters})


def measure_paths(args: argparse.Namespace, work: Path, counts: dict[str, int]) -> dict:
    env = loopback_env(args.domain_id)
    result: dict[str, float | int] = {}
    with Graph(env, work / "paths") as graph:
        graph.start(_mux_spec())
        sink, out = _start_sink(env, work, ["arm/cmd", "bench/hop"], wait=["arm/cmd"])
        sends: dict[str, list] = {}
        first_seq = 1
        try:
            for key, rate in RATES.items():
                _log(args, f"{counts[key]} messages at {rate:g} Hz on the bare hop and through the mux")
                path = work / f"sent-{key}.json"
                _run_peer(env, "source", "--rate", str(rate), "--count", str(counts[key]),
                          "--first-seq", str(first_seq), "--out", str(path), timeout=120)
                sends[key] = json.loads(path.read_text())["sent"]
                first_seq += counts[key]
        finally:
            received = _stop_sink(sink, out)
    for key in RATES:
        hop, hop_lost = match_latencies(sends[key], received["bench/hop"])
        mux, mux_lost = match_latencies(sends[key], received["arm/cmd"])
        h, m = percentiles(hop), percentiles(mux)
        result.update({
            f"hop_p50_ms_{key}": h["p50"], f"hop_p99_ms_{key}": h["p99"],
            f"mux_p50_ms_{key}": m["p50"], f"mux_p99_ms_{key}": m["p99"], f"mux_max_ms_{key}": m["max"],
            f"sent_{key}": len(sends[key]), f"hop_lost_{key}": hop_lost, f"mux_lost_{key}": mux_lost,
        })
    return result


OBSERVER_PARAMETERS = {"observation_spec": "bench/v1", "fields": ["joints"], "fields.joints.kind": "joint_positions",
                       "fields.joints.topic": "joint_states", "fields.joints.joints": ["j1"], "fields.joints.timeout": 1.0}


def measure_observer(args: argparse.Namespace, work: Path, count: int) -> dict:
    env = loopback_env(args.domain_id + 2)
    with Graph(env, work / "observer") as graph:
        graph.start(NodeSpec("observer", "iil_robot.nodes.observer", parameters=OBSERVER_PARAMETERS))
        sink, out = _start_sink(env, work, ["observation:observation", "bench/hop_joints:joints"], wait=["observation"])
        path = work / "joints.json"
        try:
            _log(args, f"{count} joint states at 100 Hz on the bare hop and through the observer")
            _run_peer(env, "joints", "--rate", "100", "--count", str(count), "--out", str(path), timeout=120)
        finally:
            received = _stop_sink(sink, out)
    sent = json.loads(path.read_text())
    hop, hop_lost = match_latencies(sent["sent"], received["bench/hop_joints"])
    delivered, lost = match_latencies(sent["sent"], received["observation"])
    # out of the observer: when it wrote the observation (the DDS source timestamp, system clock)
    out, _ = match_latencies(sent["sent_wall"], [(x, 0.0, t) for x, t in received["observation@published"]])
    h, o, d = percentiles(hop), percentiles(out), percentiles(delivered)
    return {"observer_p50_ms": o["p50"], "observer_p99_ms": o["p99"], "observer_max_ms": o["max"],
            "observer_hop_p50_ms": h["p50"], "observer_hop_p99_ms": h["p99"], "observer_added_p99_ms": o["p99"] - h["p99"],
            "observer_delivered_p50_ms": d["p50"], "observer_delivered_p99_ms": d["p99"],
            "observer_delivered_added_p99_ms": d["p99"] - h["p99"],
            "observer_sent": len(sent["sent"]), "observer_lost": lost, "observer_hop_lost": hop_lost}


def measure_handover(args: argparse.Namespace, work: Path, trials: int) -> dict:
    env = loopback_env(args.domain_id + 1)
    gate = GateConfig(engage_time=0.0)
    with Graph(env, work / "handover") as graph:
        graph.start(_mux_spec())
        graph.start(NodeSpec("spacemouse_gate", "iil_robot.nodes.spacemouse_gate",
                             params_files=(str(config_path("spacemouse_gate.yaml")),),
                             parameters={"input": "joy", "engage_time": 0.0, "release_time": 0.2}))
        graph.start(NodeSpec("policy", "iil_robot.nodes.scripted_policy", parameters={"speed": 0.0}))
        sink, out = _start_sink(env, work, ["arm/cmd"], wait=["arm/cmd"])
        path = work / "joy.json"
        try:
            _log(args, f"{trials} takeovers through the gate and the mux")
            _run_peer(env, "joy", "--trials", str(trials), "--out", str(path), timeout=300)
        finally:
            received = _stop_sink(sink, out)
    sent = json.loads(path.read_text())
    per_trial = handover_extra_ticks(sent["sent"], sent["per_trial"], sent["rest"], received["arm/cmd"], gate)
    extra = [t["extra_ticks"] for t in per_trial]
    latencies = [t["latency_ms"] for t in per_trial if t["latency_ms"] is not None]
    return {
        "handover_extra_ticks": None if None in extra else max(extra),
        "handover_extra_ticks_per_trial": extra,
        "handover_p50_ms": float(np.percentile(latencies, 50)) if latencies else None,
        "handover_max_ms": max(latencies) if latencies else None,
        "handover_trials": trials,
    }


def run(args: argparse.Namespace) -> int:
    counts = {"100hz": 300, "1khz": 1000} if args.quick else {"100hz": 1000, "1khz": 5000}
    trials = 3 if args.quick else 20
    with tempfile.TemporaryDirectory(prefix="iil-bench-latency-") as tmp:
        work = Path(tmp)
        result: dict = {"benchmark": "latency", "quick": args.quick, "cpus": os.cpu_count()}
        result.update(measure_paths(args, work, counts))
        result.update(measure_handover(args, work, trials))
        result.update(measure_observer(args, work, counts["100hz"]))
    for key in RATES:
        result[f"mux_p99_over_hop_p99_{key}"] = result[f"mux_p99_ms_{key}"] / result[f"hop_p99_ms_{key}"]
    for name in ("hop_p50_ms", "hop_p99_ms", "mux_p50_ms", "mux_p99_ms", "mux_max_ms"):
        result[name] = result[f"{name}_1khz"]
    result["targets"] = {
        "mux_p99_le_3x_hop_p99_100hz": result["mux_p99_over_hop_p99_100hz"] <= 3.0,
        "mux_p99_le_3x_hop_p99_1khz": result["mux_p99_over_hop_p99_1khz"] <= 3.0,
        "handover_0_extra_ticks": result["handover_extra_ticks"] == 0,
        "observer_adds_le_2ms_p99": result["observer_added_p99_ms"] <= 2.0,
    }
    print(json.dumps(result, indent=None if args.json else 2))
    return 0
