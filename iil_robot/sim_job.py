"""``iil-robot sim``: the main job.

Until the simulated arm exists, this runs the safe command path on its own: a scripted
SpaceMouse (``scripted_input`` on ``spacenav/joy``) through the real gate, a scripted policy
proposing at the control rate, and the mux, each in its own process with DDS on loopback. It
prints what the arm receives, who is in control, and every intervention.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from .config import config_path
from .graph import Graph, NodeSpec, loopback_env


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--duration", type=float, default=15.0, help="seconds to run (default 15)")
    parser.add_argument("--domain-id", type=int, default=int(os.environ.get("ROS_DOMAIN_ID", "0")),
                        help="ROS_DOMAIN_ID for the graph (default: $ROS_DOMAIN_ID or 0)")
    parser.add_argument("--run-dir", type=Path, default=None, help="folder for the node logs (default: a temp folder)")


def command_path_nodes() -> list[NodeSpec]:
    return [
        NodeSpec("mux", "iil_robot.nodes.mux", params_files=(str(config_path("mux.yaml")),)),
        NodeSpec("spacemouse_gate", "iil_robot.nodes.spacemouse_gate",
                 params_files=(str(config_path("spacemouse_gate.yaml")),), parameters={"input": "joy"}),
        NodeSpec("scripted_input", "iil_robot.nodes.scripted_input"),
        NodeSpec("policy", "iil_robot.nodes.scripted_policy"),
    ]


def run(args: argparse.Namespace) -> int:
    env = loopback_env(args.domain_id)
    os.environ.update({k: env[k] for k in ("ROS_AUTOMATIC_DISCOVERY_RANGE", "ROS_DOMAIN_ID")})
    run_dir = args.run_dir or Path(tempfile.mkdtemp(prefix="iil-sim-"))
    print(f"[iil] command path demo: scripted SpaceMouse -> gate -> mux -> arm (domain {args.domain_id}, "
          f"DDS on loopback); logs in {run_dir}", flush=True)
    from .arm_monitor import ArmMonitor  # rclpy only once the environment is set

    with Graph(env, run_dir) as graph:
        for spec in command_path_nodes():
            graph.start(spec)
        monitor = ArmMonitor(args.domain_id)
        try:
            deadline = time.monotonic() + args.duration
            while time.monotonic() < deadline:
                monitor.spin_for(0.1)
                dead = graph.crashed()
                if dead:
                    for process in dead:
                        print("[iil] " + graph.report(process), flush=True)
                    return 1
        except KeyboardInterrupt:
            print("\n[iil] interrupted", flush=True)
        finally:
            summary = monitor.summary()
            monitor.close()
    print(f"[iil] stopped all nodes. {summary}", flush=True)
    return 0
