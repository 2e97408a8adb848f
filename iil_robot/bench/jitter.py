"""``iil-robot bench jitter --json``: jitter of the 20 Hz control tick, idle and while the learner
trains flat out.

The policy node ticks at 20 Hz in its own process; the benchmark process feeds it observations
and receives its proposals. Jitter of a tick = |interval - 50 ms| between consecutive ticks, as
the policy node's clock stamped them when it made each proposal (``tick_jitter_*``: the control
tick itself). ``arrival_jitter_*`` times the same intervals by when the proposals reached the
benchmark process: the tick plus DDS delivery and the receiving process's own scheduling (what a
mux sees). First without a learner (``*_idle``), then with the real learner node (its shipped
parameters: RLPD, 10 critics 256x256, niced, one thread) training on synthetic step records and
publishing weights to the policy node. Target: ``tick_jitter_p99_ms`` <= 2 ms.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

from iil_robot.cli.graph import Graph, NodeSpec, add_domain_argument, loopback_env
from iil_robot.config import config_path

SPEC, OBS_DIM, RATE = "bench/v1", 25, 20.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print only the JSON object")
    parser.add_argument("--quick", action="store_true", help="a few seconds per phase (a smoke run)")
    parser.add_argument("--seconds", type=float, default=30.0, help="seconds per phase (default 30)")
    add_domain_argument(parser, "ROS domain to use (default 73)", default=73)
    parser.add_argument("--logs", default="", help="keep the nodes' logs in this directory")
    parser.add_argument("--learner-param", action="append", default=[], metavar="NAME=VALUE",
                        help="override a shipped learner parameter (YAML value), e.g. idle_priority=false; repeatable")


def jitter_ms(times: list[float]) -> np.ndarray:
    return np.abs(np.diff(np.asarray(times)) - 1.0 / RATE) * 1e3


def run(args: argparse.Namespace) -> int:
    from iil_robot.nodes.peers.policy import PolicyPeer

    seconds = 4.0 if args.quick else args.seconds
    overrides = {}
    for item in args.learner_param:
        name, sep, value = item.partition("=")
        if not sep or not name:
            print(f"error: --learner-param {item!r} must be NAME=VALUE", file=sys.stderr)
            return 2
        overrides[name] = yaml.safe_load(value)
    with tempfile.TemporaryDirectory() as tmp, Graph(loopback_env(args.domain_id),
                                                     Path(args.logs or Path(tmp) / "logs")) as graph:
        graph.start(NodeSpec("policy", "iil_robot.nodes.policy_node", params_files=(str(config_path("policy.yaml")),),
                             parameters={"rate": RATE}))
        peer = PolicyPeer(args.domain_id, OBS_DIM, SPEC)
        try:
            peer.spin_until(lambda: len(peer.proposals) > 5, 60.0, "the policy node's first proposals")
            start = len(peer.proposals)
            peer.spin_for(seconds)
            idle = jitter_ms([t for t, _ in peer.proposals[start:]])
            idle_ticks = jitter_ms(peer.tick_stamps[start:])

            graph.start(NodeSpec("learner", "iil_robot.nodes.learner", params_files=(str(config_path("learner.yaml")),),
                                 parameters={"observation_spec": SPEC, "run_dir": str(Path(tmp) / "run"),
                                             "checkpoint_period": 3600.0, **overrides}))
            peer.spin_until(lambda: peer.step_pub.get_subscription_count() > 0, 60.0, "the learner's step subscription")
            # records at 200/s until the learner's first weights act (its first update needs min_transitions)
            deadline = time.monotonic() + 180.0
            while not any(v > 0 for _, v in peer.proposals):
                if time.monotonic() > deadline or graph.crashed():
                    raise RuntimeError("the learner's weights never reached the policy:\n" + graph.tail("learner"))
                peer.publish_steps(10)
                peer.spin_for(0.05)
            start, end, next_step = len(peer.proposals), time.monotonic() + seconds, 0.0
            while time.monotonic() < end:
                peer.spin_for(0.01)
                if time.monotonic() >= next_step:
                    peer.publish_steps(1)
                    next_step = time.monotonic() + 1.0 / RATE
            loaded_times = [t for t, _ in peer.proposals[start:]]
            loaded_ticks = peer.tick_stamps[start:]
            versions = sorted({v for _, v in peer.proposals[start:]})
            crashed = graph.crashed()
            if crashed:
                raise RuntimeError(graph.report(crashed[0]))
        finally:
            peer.close()
    loaded, ticks = jitter_ms(loaded_times), jitter_ms(loaded_ticks)

    def ms(values: np.ndarray, q: float) -> float:
        return round(float(np.percentile(values, q)), 3)

    print(json.dumps({
        "tick_jitter_p99_ms": ms(ticks, 99),
        "tick_jitter_p99_ms_idle": ms(idle_ticks, 99),
        "tick_jitter_p50_ms": ms(ticks, 50),
        "tick_jitter_max_ms": round(float(ticks.max()), 3),
        "arrival_jitter_p99_ms": ms(loaded, 99),
        "arrival_jitter_p99_ms_idle": ms(idle, 99),
        "arrival_jitter_max_ms": round(float(loaded.max()), 3),
        "ticks": len(loaded), "ticks_idle": len(idle), "weights_versions_during_load": len(versions), "rate_hz": RATE,
        "learner_overrides": overrides,
    }))
    return 0
