"""``iil-robot bench sync --json``: learner publishes weights -> the policy node acts with them.

The benchmark process plays the learner and the arm: it publishes real RLPD actor weights
(observation 25, 256x256) on ``policy/weights`` and fresh observations at 100 Hz, and times
each version from its publication to the first proposal carrying it. The policy node runs in
its own process at 20 Hz, so the figure includes waiting for the next control tick (up to 50 ms).
Target: p99 <= 250 ms.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from iil_robot.cli.graph import Graph, NodeSpec, loopback_env
from iil_robot.learners.rlpd import RLPDConfig, RLPDLearner
from iil_robot.learners.weights import ACTION_SPEC, WeightsMeta, encode_policy

SPEC, OBS_DIM = "bench/v1", 25


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print only the JSON object")
    parser.add_argument("--quick", action="store_true", help="a few versions only (a smoke run)")
    parser.add_argument("--versions", type=int, default=40, help="weights versions to time (default 40)")
    parser.add_argument("--domain-id", type=int, default=71, help="ROS domain to use (default 71)")


def weights_bytes(version: int, learner: RLPDLearner) -> bytes:
    shape = learner.policy.shape
    meta = WeightsMeta(version, "rlpd", SPEC, OBS_DIM, ACTION_SPEC, 4, shape.hidden, 1, version, time.time())
    return encode_policy(learner.policy, meta)


def run(args: argparse.Namespace) -> int:
    from iil_robot.nodes.peers.policy import PolicyPeer

    versions = 5 if args.quick else args.versions
    learner = RLPDLearner(OBS_DIM, 4, RLPDConfig(num_qs=2))
    latencies: list[float] = []
    with tempfile.TemporaryDirectory() as tmp, Graph(loopback_env(args.domain_id), Path(tmp)) as graph:
        graph.start(NodeSpec("policy", "iil_robot.nodes.policy_node", parameters={"rate": 20.0}))
        peer = PolicyPeer(args.domain_id, OBS_DIM, SPEC)
        try:
            peer.spin_until(lambda: len(peer.proposals) > 2, 60.0, "the policy node's first proposals")
            for version in range(1, versions + 1):
                data = weights_bytes(version, learner)
                peer.spin_for(0.1 + 0.05 * np.random.default_rng(version).random())  # de-phase from the tick
                sent = peer.publish_weights(data)
                count = len(peer.proposals)
                peer.spin_until(lambda: any(v == version for _, v in peer.proposals[count:]), 10.0, f"version {version}")  # noqa: B023 (waited for here)
                latencies.append(next(t for t, v in peer.proposals[count:] if v == version) - sent)
        finally:
            peer.close()
    ms = np.asarray(latencies) * 1e3
    print(json.dumps({"sync_p50_ms": round(float(np.percentile(ms, 50)), 2),
                      "sync_p99_ms": round(float(np.percentile(ms, 99)), 2),
                      "sync_max_ms": round(float(ms.max()), 2), "versions": len(ms), "weights_bytes": len(data),
                      "control_rate_hz": 20.0}))
    return 0
