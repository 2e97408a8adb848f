"""``iil-robot soak --minutes N``: the main job's graph under a steady stream of bad inputs.

Starts exactly the nodes of ``iil-robot sim`` (``graph_nodes``: observer, sim arm and operator, gate, mux, policy,
recorder, learner) and, ``--rate`` times a second, sends each of its streams the next hostile message
(``iil_robot.nodes.peers.soak``: malformed proposals, step records, observations, episode events, hostile weights)
and asks the mux to take a bad parameter. A node that dies is reported and restarted. Prints one JSON object: per
process its RSS after the warm-up and at the end and the growth, the growth over the run's second half (a leak
keeps growing there; a process still warming up at the baseline does not), an RSS sample every ``--sample-period``
seconds, and its restarts. The learner's warm-up lasts until its first weights drive the arm (its networks, optimiser
state and first updates are allocated only once enough data has arrived) and its diagnostics show no compile pending
(a fused learner builds its compiled graphs once, when it switches), but at most a third of the run; every
other process's lasts ``--warmup`` seconds. Also the mux's ticks missing from
the step records received (``ticks_missing``), stale-policy holds, what was sent, parameter changes refused and
accepted. Exit code 3 when a node restarted, a bad parameter was taken, a tick was lost or an RSS grew by
``--max-rss-growth`` (10 %) or more.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from iil_robot.cli.graph import Graph, NodeSpec, add_domain_argument, loopback_env
from iil_robot.cli.sim import graph_nodes

SETTINGS = {"task": "push", "method": "rlif", "robot": "fetch", "operator_model": "value", "operator_level": 0.7, "seed": 0,
            "episodes_done": 0}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--minutes", type=float, default=30.0, help="how long (default 30; fractions for a smoke run)")
    parser.add_argument("--rate", type=float, default=2.0, help="bad messages per second on each stream (default 2)")
    parser.add_argument("--warmup", type=float, default=60.0,
                        help="seconds before the RSS baseline (default 60; at most a third of the run)")
    parser.add_argument("--sample-period", type=float, default=60.0, help="seconds between RSS samples (default 60)")
    parser.add_argument("--max-rss-growth", type=float, default=10.0, help="percent of RSS growth that fails (default 10)")
    add_domain_argument(parser, "ROS domain to use (default 101: outside the 20-99 the node tests take, so a test run "
                                "beside it cannot mix its step records into the soak's)", default=101)
    parser.add_argument("--run-dir", type=Path, default=None, help="keep the bags and logs here (default: a temporary folder)")
    parser.add_argument("--json", action="store_true", help="print only the JSON object")


def rss_mb(pid: int) -> float | None:
    """Resident set size of a process (MB), None when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except FileNotFoundError:
        return None
    return None


def restart_dead(graph: Graph, specs: dict[str, NodeSpec], restarts: dict[str, int]) -> None:
    for process in graph.crashed():
        name = process.spec.name
        print(graph.report(process), file=sys.stderr)
        graph.stop(name)
        graph.start(specs[name])
        restarts[name] += 1


def sample_rss(graph: Graph) -> dict[str, float]:
    return {name: mb for name, p in graph.processes.items() if (mb := rss_mb(p.pid)) is not None}


def soak(graph: Graph, specs: dict[str, NodeSpec], args: argparse.Namespace) -> dict:
    from iil_robot.nodes.peers.soak import SoakPeer

    seconds = args.minutes * 60.0
    warmup = min(args.warmup, seconds / 3)
    restarts = dict.fromkeys(specs, 0)
    peer = SoakPeer(args.domain_id)
    try:
        for spec in specs.values():
            graph.start(spec)
        start = time.monotonic()
        baseline: dict[str, float] = {}
        baseline_at: dict[str, float] = {}
        samples: list[tuple[float, dict[str, float]]] = []
        while (elapsed := time.monotonic() - start) < seconds:
            peer.send()
            peer.spin_for(1.0 / args.rate)
            restart_dead(graph, specs, restarts)
            if elapsed >= warmup and len(baseline) < len(graph.processes):
                learned = peer.counts.learner_settled() or elapsed >= seconds / 3
                for name, mb in sample_rss(graph).items():
                    if name not in baseline and (name != "learner" or learned):
                        baseline[name], baseline_at[name] = mb, elapsed
            if elapsed >= len(samples) * args.sample_period:
                samples.append((elapsed, sample_rss(graph)))
        end = sample_rss(graph)
        samples.append((time.monotonic() - start, end))
    finally:
        peer.close()
    return report(peer.counts, baseline, baseline_at, end, samples, restarts, seconds, args)


def growth_pct(before: float | None, after: float | None) -> float | None:
    return None if not before or after is None else round(100.0 * (after - before) / before, 2)


def report(counts, baseline: dict[str, float], baseline_at: dict[str, float], end: dict[str, float],
           samples: list[tuple[float, dict[str, float]]], restarts: dict[str, int], seconds: float,
           args: argparse.Namespace) -> dict:
    processes = {}
    half = next((rss for t, rss in samples if t >= seconds / 2), {})
    for name, count in restarts.items():
        before, after = baseline.get(name), end.get(name)
        processes[name] = {"rss_mb_after_warmup": before and round(before, 1),
                           "warmup_s": round(baseline_at[name]) if name in baseline_at else None,
                           "rss_mb_end": after and round(after, 1),
                           "rss_growth_pct": growth_pct(before, after),
                           "rss_growth_pct_second_half": growth_pct(half.get(name), after),
                           "rss_mb_samples": [round(rss[name], 1) if name in rss else None for _, rss in samples],
                           "restarts": count}
    rss_ok = all(p["rss_growth_pct"] is not None and p["rss_growth_pct"] < args.max_rss_growth for p in processes.values())
    passed = (rss_ok and not any(restarts.values()) and counts.parameters_accepted == 0 and counts.ticks.between == 0
              and counts.step_records > 0)
    return {"seconds": round(seconds, 1), "sample_times_s": [round(t) for t, _ in samples], "processes": processes,
            "step_records": counts.step_records,
            "ticks_missing": counts.ticks.between, "stale_policy_holds": counts.stale_policy_holds, "sent": counts.sent,
            "parameters_refused": counts.parameters_refused, "parameters_accepted": counts.parameters_accepted,
            "passed": passed}


def run(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="iil-soak-") as tmp:
        run_dir = args.run_dir or Path(tmp)
        specs = {spec.name: spec for spec in graph_nodes(run_dir, SETTINGS, resume=False)}
        with Graph(loopback_env(args.domain_id), run_dir / "logs") as graph:
            result = soak(graph, specs, args)
    print(json.dumps(result))
    return 0 if result["passed"] else 3
