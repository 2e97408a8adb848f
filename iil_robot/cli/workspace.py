"""``iil-robot workspace record``: capture the workspace box while an operator jogs the arm.

Subscribes the end-effector pose under the robot profile's name (``ee_pose`` remapped, e.g.
``/franka_robot_state_broadcaster/current_pose``), shows the running bounds while the operator
jogs the arm with the SpaceMouse over the space the task needs, and on Enter (or after
``--seconds``) writes a parameter overlay for the profile: the mux's ``workspace.*`` (the box
widened by ``--margin``, the |roll|/pitch/yaw ranges by ``--angle-margin``) and the episode
manager's ``workspace_min``/``workspace_max``. Paste it into ``parameters:`` of your profile.
Poses in another frame than the mux's ``frame_id`` are refused and counted.
"""
from __future__ import annotations

import argparse
import os
import select
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, TextIO

import yaml

from iil_robot.cli.graph import add_domain_argument
from iil_robot.command.workspace import WorkspaceExtent
from iil_robot.config.profiles import ProfileError, load_profile, profile_names

ACTIONS = ("record",)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=ACTIONS, help="record: capture the box while the operator jogs the arm")
    parser.add_argument("--robot", default="fetch", help=f"robot profile ({', '.join(profile_names())}) or a profile file")
    add_domain_argument(parser, "ROS_DOMAIN_ID of the robot's graph (default: $ROS_DOMAIN_ID or 0)", starts_graph=False)
    parser.add_argument("--seconds", type=float, default=0.0, help="stop after this long (0: on Enter)")
    parser.add_argument("--margin", type=float, default=0.03, help="metres added on every side of the box (default 0.03)")
    parser.add_argument("--angle-margin", type=float, default=0.2, help="radians added to each angle range (default 0.2)")
    parser.add_argument("--output", type=Path, default=Path("workspace.yaml"), help="overlay file to write")


def run(args: argparse.Namespace) -> int:
    try:
        profile = load_profile(args.robot)
    except ProfileError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.margin < 0 or args.angle_margin < 0:
        print("error: --margin and --angle-margin must be >= 0", file=sys.stderr)
        return 2
    topic = profile.remappings.get("ee_pose", "ee_pose")
    extent = WorkspaceExtent(profile.node_parameters("mux").get("frame_id", "base_link"))
    print(f"recording {topic} in {extent.frame_id} (domain {args.domain_id}): jog the arm over the space the task needs, "
          + (f"for {args.seconds:g} s" if args.seconds > 0 else "then press Enter"), flush=True)
    record(extent, topic, args.domain_id, args.seconds, lambda: _enter_pressed(sys.stdin), sys.stdout)
    for why, count in extent.refused.items():
        print(f"refused {count} poses: {why}", file=sys.stderr)
    try:
        parameters = extent.parameters(args.margin, args.angle_margin)
    except ValueError as err:
        print(f"error: {err}; is the arm's driver running on domain {args.domain_id}, publishing {topic}?", file=sys.stderr)
        return 1
    header = (f"# iil-robot workspace record --robot {args.robot}, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC: "
              f"{extent.count} poses in {extent.frame_id}, margin {args.margin} m / {args.angle_margin} rad.\n"
              "# Add these under `parameters:` in your robot profile (config/profiles/<robot>.yaml).\n")
    args.output.write_text(header + yaml.safe_dump({"parameters": parameters}, sort_keys=False, default_flow_style=None))
    print(f"wrote {args.output}")
    return 0


def record(extent: WorkspaceExtent, topic: str, domain_id: int, seconds: float, stop: Callable[[], bool],
           out: TextIO) -> None:
    """Feed ``extent`` every pose on ``topic`` until ``stop()`` or ``seconds`` (> 0) have passed, showing the bounds
    on ``out``."""
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    from iil_robot.nodes.clients.pose_listener import PoseListener  # rclpy only once the environment is set

    def on_pose(msg) -> None:
        p, q = msg.pose.position, msg.pose.orientation
        extent.add((p.x, p.y, p.z), (q.x, q.y, q.z, q.w), msg.header.frame_id)

    listener = PoseListener(domain_id, topic, on_pose, "workspace_record")
    end = time.monotonic() + seconds if seconds > 0 else float("inf")
    next_line = 0.0
    try:
        while time.monotonic() < end and not stop():
            listener.spin(0.05)
            if time.monotonic() >= next_line:
                next_line = time.monotonic() + 0.5
                out.write("\r" + extent.line() + "\033[K")
                out.flush()
    except KeyboardInterrupt:
        pass
    finally:
        out.write("\n")
        listener.close()


def _enter_pressed(keys: TextIO) -> bool:
    try:
        ready, _, _ = select.select([keys], [], [], 0.0)
    except (ValueError, OSError, TypeError):  # closed or not a real file: no keys, stop on --seconds
        return False
    return bool(ready) and keys.readline() != ""
