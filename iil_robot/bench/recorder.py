"""``iil-robot bench recorder --json``: can the recorder keep up with 10x a real control loop?

A load process publishes the topics of a 20 Hz control loop with one 128x128 RGB camera (step
records, proposals, observations, arm and gripper commands, joint states, EE pose, the camera
at 20 Hz each; the SpaceMouse gate's human/cmd at 100 Hz) at ``--factor`` times those rates
(default 10) for ``--duration`` seconds into the real recorder node. The recorder is then
stopped (SIGINT) and its bag read back with rosbags. Reported per topic: sent, written,
dropped; totals, rates, MB/s, and ``step_ticks_missing`` (step records lost, from tick gaps).
The 10-minute no-drop check: ``--duration 600 --factor 1``.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from iil_robot.cli.graph import Graph, NodeSpec, add_domain_argument, loopback_env
from iil_robot.config import config_path
from iil_robot.data.bags import find_bags, read_messages
from iil_robot.data.records import StepRecord

PEERS = "iil_robot.nodes.peers.recorder"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print only the JSON object")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of load (default 10)")
    parser.add_argument("--factor", type=float, default=10.0, help="multiple of a 20 Hz loop's rates (default 10)")
    parser.add_argument("--quick", action="store_true", help="a 2 s smoke run")
    add_domain_argument(parser, "ROS domain to use (default 63)", default=63)
    parser.add_argument("--keep", metavar="DIR", help="write the bag into DIR and keep it")


def run(args: argparse.Namespace) -> int:
    duration = 2.0 if args.quick else args.duration
    with tempfile.TemporaryDirectory(prefix="iil-bench-recorder-") as tmp:
        work = Path(tmp)
        output = Path(args.keep) if args.keep else work / "bags"
        sent_file = work / "sent.json"
        with Graph(loopback_env(args.domain_id), work / "logs") as graph:
            graph.start(NodeSpec("recorder", "iil_robot.nodes.recorder", params_files=(str(config_path("recorder.yaml")),),
                                 parameters={"output_dir": str(output), "prefix": "bench"}))
            load = graph.start(NodeSpec("recorder_load", PEERS, parameters={
                "factor": args.factor, "duration": duration, "out": str(sent_file)}))
            started = time.monotonic()
            code = load.popen.wait(timeout=duration + 120.0)
            wall = time.monotonic() - started
            if code != 0 or not sent_file.exists():
                print(graph.report(load), file=sys.stderr)
                return 1
            recorder = graph.processes["recorder"]
            if recorder.popen.poll() is not None:
                print(graph.report(recorder), file=sys.stderr)
                return 1
            codes = graph.stop("recorder", timeout=60.0)
            recorder_log = (work / "logs" / "recorder.log").read_text(errors="replace")
        sent = json.loads(sent_file.read_text())["sent"]
        result = measure(output, sent, duration)
        result.update({"factor": args.factor, "duration_s": duration, "load_wall_s": round(wall, 2),
                       "recorder_exit_code": codes["recorder"],
                       "recorder_dropped_log": [ln for ln in recorder_log.splitlines() if "dropped" in ln][-1:]})
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))
    return 0 if result["keeps_up"] else 3


def measure(output: Path, sent: dict[str, int], duration: float) -> dict:
    written: dict[str, int] = {}
    ticks: list[int] = []
    size = 0
    for bag in find_bags([output]):
        size += sum(p.stat().st_size for p in bag.glob("*.mcap"))
        for m in read_messages(bag, ["/" + t for t in sent], raw=True):
            written[m.topic] = written.get(m.topic, 0) + 1
        ticks += [StepRecord.decode(m.message.data).tick for m in read_messages(bag, ["/step"])]
    topics = {t: {"sent": n, "written": written.get("/" + t, 0), "dropped": n - written.get("/" + t, 0),
                  "rate_hz": round(n / duration, 1)} for t, n in sent.items()}
    total_sent = sum(sent.values())
    total_written = sum(v["written"] for v in topics.values())
    missing = len(set(range(sent["step"])) - set(ticks))
    return {
        "topics": topics,
        "sent": total_sent, "written": total_written, "dropped": total_sent - total_written,
        "sent_rate_hz": round(total_sent / duration, 1), "written_rate_hz": round(total_written / duration, 1),
        "written_mb_per_s": round(size / duration / 1e6, 2),
        "step_ticks_missing": missing,
        "keeps_up": missing == 0 and total_written == total_sent,
    }
