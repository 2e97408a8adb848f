"""``iil-robot console``: the operator's console, attached to any running graph on this ROS domain.

It shows what the operator needs at a glance (episode and its state, who drives, intervention
rate, success over the last episodes, policy version, learner status, help requests, problems)
and takes the episode keys: ``n`` start the next episode, ``s`` success, ``f`` failure, ``r``
reset, ``p`` pause or resume the arm (the mux holds it), ``q`` quit. Keys are requests: the
episode manager refuses one that does not fit its state and says why. ``iil-robot sim`` shows the
same view. DDS stays on this machine unless ``ROS_AUTOMATIC_DISCOVERY_RANGE`` says otherwise.
"""
from __future__ import annotations

import argparse
import os
import select
import sys
import tempfile
import termios
import tty
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from iil_robot.cli.graph import add_domain_argument

KEYS = {"n": "start", "s": "success", "f": "failure", "r": "reset"}
HELP = "keys: n start  s success  f failure  r reset  p pause/resume  q quit"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_domain_argument(parser, "ROS_DOMAIN_ID of the graph (default: $ROS_DOMAIN_ID or 0)", starts_graph=False)
    parser.add_argument("--seconds", type=float, default=0.0, help="quit after this long (0: run until q or Ctrl-C)")
    parser.add_argument("--camera", default="front", help="camera whose newest frame is shown (default front): drawn "
                        "inline on kitty or iTerm2, and kept in --frames-dir")
    parser.add_argument("--frames-dir", type=Path, default=None,
                        help="where the newest camera frame is written (default: iil-console-<domain> in the temp folder)")


@contextmanager
def console_keys() -> Iterator[bool]:
    """The terminal in cbreak mode (a key at a time, no echo) while inside; whether keys can be read."""
    if not sys.stdin.isatty():
        yield False
        return
    saved = termios.tcgetattr(sys.stdin)
    try:
        tty.setcbreak(sys.stdin)
        yield True
    finally:
        termios.tcsetattr(sys.stdin, termios.TCSADRAIN, saved)


def read_key() -> str:
    """The next key pressed, or "" when none is waiting."""
    ready, _, _ = select.select([sys.stdin], [], [], 0.0)
    return sys.stdin.read(1) if ready else ""


def run(args: argparse.Namespace) -> int:
    import time

    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    from iil_robot.nodes.console.dashboard import Dashboard  # rclpy only once the environment is set

    frames = args.frames_dir or Path(tempfile.gettempdir()) / f"iil-console-{args.domain_id}"
    dashboard = Dashboard(args.domain_id, f"iil-robot console (domain {args.domain_id})", None, interactive=True,
                          run_dir=frames, camera=args.camera)
    paused = False
    pause = dashboard.pause_client()
    end = time.monotonic() + args.seconds if args.seconds > 0 else float("inf")
    try:
        with console_keys() as keys:
            dashboard.keys_line = HELP if keys else "no terminal: keys are off"
            while time.monotonic() < end:
                dashboard.spin_for(0.05)
                key = read_key() if keys else ""
                if key == "q":
                    break
                if key in KEYS:
                    dashboard.request(KEYS[key])
                    dashboard.keys_line = f"{HELP}   (asked: {KEYS[key]})"
                elif key == "p":
                    paused = not paused
                    dashboard.set_paused(pause, paused)
                    dashboard.keys_line = f"{HELP}   ({'paused: the arm holds' if paused else 'resumed'})"
    except KeyboardInterrupt:
        pass
    finally:
        print(f"console: {dashboard.redraws.summary()}", flush=True)
        dashboard.close()
    return 0
