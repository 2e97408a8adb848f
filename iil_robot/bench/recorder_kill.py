"""``iil-robot bench recorder-kill --json``: what a SIGKILL of the recorder loses.

Each round starts the real recorder node (shipped ``recorder.yaml``: ``split_period`` 1 s, ``flush_period`` 0.2 s) on a
fresh output folder, publishes numbered step records at ``--rate`` once it has subscribed, and SIGKILLs it after a
random 1.5-4 s (so the kills fall at every phase of its file rotations and flushes). The bag is then read as it
was left (the files ``metadata.yaml`` lists) and again after ``repair_bag`` (what ``iil-robot replay --repair``
runs). Either must hold the records in order, with no gap, up to the first one missing; the loss of a round is the
age at the kill of that first missing record (by its publication: it includes delivery to the recorder), 0 if none.

Reported: ``lost_max_s`` and ``lost_p99_s`` (as left) against ``split_period``, ``lost_max_s_repaired`` and
``lost_p99_s_repaired`` against ``flush_period``, and how many rounds exceeded each bound.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from iil_robot.cli.graph import Graph, NodeSpec, add_domain_argument, loopback_env
from iil_robot.config import config_path
from iil_robot.data.bags import find_bags, read_messages, repair_bag
from iil_robot.data.records import StepRecord

SPLIT_PERIOD, FLUSH_PERIOD = 1.0, 0.2
"""The shipped recorder.yaml's (this benchmark checks them against the file)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print only the JSON object")
    parser.add_argument("--kills", type=int, default=100, help="rounds, one SIGKILL each (default 100)")
    parser.add_argument("--rate", type=float, default=200.0, help="step records per second (default 200)")
    parser.add_argument("--quick", action="store_true", help="5 rounds (a smoke run)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill moments")
    add_domain_argument(parser, "ROS domain to use (default 65)", default=65)


def ticks_in(bag: Path) -> list[int]:
    return [StepRecord.decode(m.message.data).tick for m in read_messages(bag, ["/step"])]


def lost_seconds(ticks: list[int], sent: list[float], killed_at: float) -> float:
    """Age at the kill of the first record the bag lacks. Raises RuntimeError when the bag is not a prefix of
    what was sent (a hole or a reordering: worse than a loss at the end)."""
    if ticks != list(range(len(ticks))):
        raise RuntimeError(f"the bag is not a prefix of what was sent: ticks {ticks[:5]}... ({len(ticks)} records)")
    return killed_at - sent[len(ticks)] if len(ticks) < len(sent) else 0.0


SETTLE = 1.0
"""Seconds between the publisher seeing the recorder's subscription and the first record: the subscription may not
have matched the publisher back yet, and what is published before that is not delivered."""


def one_round(graph: Graph, domain_id: int, output: Path, seconds: float, rate: float) -> tuple[float, float]:
    """(lost as left, lost after repair) for one SIGKILL after ``seconds`` of records."""
    from iil_robot.nodes.peers.recorder import StepStream

    recorder = graph.start(NodeSpec("recorder", "iil_robot.nodes.recorder", params_files=(str(config_path("recorder.yaml")),),
                                    parameters={"output_dir": str(output), "prefix": "kill"}))
    stream = StepStream(domain_id)  # a new participant each round: the killed recorder's subscription is never matched
    try:
        deadline = time.monotonic() + 60.0
        while not stream.matched():
            if time.monotonic() > deadline or recorder.popen.poll() is not None:
                raise RuntimeError("the recorder never subscribed:\n" + graph.report(recorder))
            time.sleep(0.01)
        time.sleep(SETTLE)
        start = time.monotonic()
        while (now := time.monotonic()) - start < seconds:
            while len(stream.sent) < (now - start) * rate:
                stream.publish()
            time.sleep(0.001)
        killed_at = time.monotonic()
        graph.kill("recorder")
        recorder.popen.wait(10.0)
    finally:
        stream.close()
        graph.stop("recorder")
    [bag] = find_bags([output])
    as_left = lost_seconds(ticks_in(bag), stream.sent, killed_at)
    repair_bag(bag)
    return as_left, lost_seconds(ticks_in(bag), stream.sent, killed_at)


def check_shipped_periods() -> None:
    import yaml

    shipped = yaml.safe_load(config_path("recorder.yaml").read_text())["recorder"]["ros__parameters"]
    if (shipped["split_period"], shipped["flush_period"]) != (SPLIT_PERIOD, FLUSH_PERIOD):
        raise RuntimeError(f"recorder.yaml ships split_period {shipped['split_period']}, flush_period "
                           f"{shipped['flush_period']}: update SPLIT_PERIOD, FLUSH_PERIOD here")


def summary(losses: list[tuple[float, float]]) -> dict:
    left, repaired = np.asarray(losses).T
    return {"kills": len(losses), "split_period_s": SPLIT_PERIOD, "flush_period_s": FLUSH_PERIOD,
            "lost_max_s": round(float(left.max()), 4), "lost_p99_s": round(float(np.percentile(left, 99)), 4),
            "lost_p50_s": round(float(np.percentile(left, 50)), 4), "kills_over_split_period": int((left > SPLIT_PERIOD).sum()),
            "lost_max_s_repaired": round(float(repaired.max()), 4),
            "lost_p99_s_repaired": round(float(np.percentile(repaired, 99)), 4),
            "kills_over_flush_period_repaired": int((repaired > FLUSH_PERIOD).sum())}


def run(args: argparse.Namespace) -> int:
    check_shipped_periods()
    kills = min(5, args.kills) if args.quick else args.kills
    rng = np.random.default_rng(args.seed)
    env = loopback_env(args.domain_id)
    losses: list[tuple[float, float]] = []
    with tempfile.TemporaryDirectory(prefix="iil-bench-kill-") as tmp, Graph(env, Path(tmp) / "logs") as graph:
        for i in range(kills):
            losses.append(one_round(graph, args.domain_id, Path(tmp) / f"round_{i:03d}", rng.uniform(1.5, 4.0), args.rate))
            if not args.json:
                print(f"round {i}: lost {losses[-1][0]:.3f} s as left, {losses[-1][1]:.3f} s after repair", file=sys.stderr)
    print(json.dumps(summary(losses)))
    return 0
