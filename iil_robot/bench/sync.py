"""``iil-robot bench sync --json``: learner publishes weights -> the policy node acts with them; and the
policy's tick while hostile weights arrive.

The benchmark process plays the learner and the arm: it publishes real RLPD actor weights
(observation 25, 256x256) on ``policy/weights`` and fresh observations at 100 Hz, and times
each version from its publication to the first proposal carrying it. The policy node runs in
its own process at 20 Hz, so the figure includes waiting for the next control tick (up to 50 ms).
Target: p99 <= 250 ms.

Then it times the gaps between the policy's ticks (by the stamps the policy node's clock put on its
proposals): idle, and while a stream of hostile weights messages arrives (``iil_robot.nodes.peers.hostile``:
oversized claims, corrupt tensors, wrong layouts, a 4 MB bloated message, ... at ``--bad-rate`` per second).
``tick_gap_max_ms_under_bad_weights`` is the largest; the period is 50 ms. Every hostile message must be
refused (the node's log) and none may act.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from iil_robot.cli.graph import Graph, NodeSpec, add_domain_argument, loopback_env
from iil_robot.data.actions import ACTION_SPACES
from iil_robot.learners.rlpd import RLPDConfig, RLPDLearner
from iil_robot.learners.weights import WeightsMeta, encode_policy
from iil_robot.nodes.peers.hostile import hostile_weights

TRANSLATION = ACTION_SPACES["translation"].spec  # the default action space's weights

SPEC, OBS_DIM, RATE = "bench/v1", 25, 20.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print only the JSON object")
    parser.add_argument("--quick", action="store_true", help="a few versions and seconds only (a smoke run)")
    parser.add_argument("--versions", type=int, default=40, help="weights versions to time (default 40)")
    parser.add_argument("--bad-seconds", type=float, default=10.0,
                        help="seconds of hostile weights, and of idle ticks (default 10)")
    parser.add_argument("--bad-rate", type=float, default=4.0, help="hostile weights messages per second (default 4)")
    add_domain_argument(parser, "ROS domain to use (default 71)", default=71)


def weights_bytes(version: int, learner: RLPDLearner) -> bytes:
    shape = learner.policy.shape
    meta = WeightsMeta(version, "rlpd", SPEC, OBS_DIM, TRANSLATION, 4, shape.hidden, 1, version, time.time())
    return encode_policy(learner.policy, meta)


def max_gap_ms(stamps: list[float]) -> float:
    return round(float(np.diff(np.asarray(stamps)).max()) * 1e3, 2)


def time_versions(peer, versions: int) -> tuple[list[float], int]:
    """Seconds from each version's publication to its first proposal; the size of one message."""
    learner = RLPDLearner(OBS_DIM, 4, RLPDConfig(num_qs=2))
    latencies = []
    for version in range(1, versions + 1):
        data = weights_bytes(version, learner)
        peer.spin_for(0.1 + 0.05 * np.random.default_rng(version).random())  # de-phase from the tick
        sent = peer.publish_weights(data)
        count = len(peer.proposals)
        peer.spin_until(lambda: any(v == version for _, v in peer.proposals[count:]), 10.0, f"version {version}")  # noqa: B023 (waited for here)
        latencies.append(next(t for t, v in peer.proposals[count:] if v == version) - sent)
    return latencies, len(data)


def stream_bad_weights(peer, seconds: float, rate: float) -> tuple[list[float], int]:
    """Publish hostile weights at ``rate`` for ``seconds``, cycling through the kinds; the tick stamps meanwhile."""
    from iil_robot.nodes.learner import weights_message

    messages = [weights_message(data) for _, data in hostile_weights(OBS_DIM, SPEC)]
    start, sent = len(peer.tick_stamps), 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        peer.weights_pub.publish(messages[sent % len(messages)])
        sent += 1
        peer.spin_for(1.0 / rate)
    return peer.tick_stamps[start:], sent


def run(args: argparse.Namespace) -> int:
    from iil_robot.nodes.peers.policy import PolicyPeer

    versions, seconds = (5, 3.0) if args.quick else (args.versions, args.bad_seconds)
    with tempfile.TemporaryDirectory() as tmp, Graph(loopback_env(args.domain_id), Path(tmp)) as graph:
        graph.start(NodeSpec("policy", "iil_robot.nodes.policy_node", parameters={"rate": RATE}))
        peer = PolicyPeer(args.domain_id, OBS_DIM, SPEC)
        try:
            peer.spin_until(lambda: len(peer.proposals) > 2, 60.0, "the policy node's first proposals")
            latencies, size = time_versions(peer, versions)
            start = len(peer.tick_stamps)
            peer.spin_for(seconds)
            idle = peer.tick_stamps[start:]
            under_bad, sent = stream_bad_weights(peer, seconds, args.bad_rate)
            peer.spin_for(1.0)  # twenty ticks: the last message has been validated
            refused = graph.processes["policy"].log_path.read_text().count("refused weights")
            acted = {v for _, v in peer.proposals[-len(under_bad):]}
            if acted != {versions}:
                raise RuntimeError(f"hostile weights changed the acting version: {sorted(acted)} (expected {versions})")
        finally:
            peer.close()
    ms = np.asarray(latencies) * 1e3
    print(json.dumps({"sync_p50_ms": round(float(np.percentile(ms, 50)), 2),
                      "sync_p99_ms": round(float(np.percentile(ms, 99)), 2),
                      "sync_max_ms": round(float(ms.max()), 2), "versions": len(ms), "weights_bytes": size,
                      "control_rate_hz": RATE, "tick_gap_max_ms_idle": max_gap_ms(idle),
                      "tick_gap_max_ms_under_bad_weights": max_gap_ms(under_bad), "bad_weights_sent": sent,
                      "bad_weights_refused": refused}))
    return 0
