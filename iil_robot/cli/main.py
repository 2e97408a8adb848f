"""The `iil-robot` command line.

Each command lives in its own module, which provides ``add_arguments(parser)`` and
``run(args) -> int``; modules are imported only when their command runs, so
``iil-robot doctor`` works without torch or rclpy.
"""
from __future__ import annotations

import argparse
import importlib
import signal
import sys

COMMANDS: dict[str, tuple[str, str]] = {
    "sim": ("iil_robot.cli.sim", "run the main job: the whole loop with a simulated operator"),
    "doctor": ("iil_robot.cli.doctor", "check that a SpaceMouse is visible and readable, and say what to do if not"),
    "replay": ("iil_robot.cli.replay", "summarise, plot, label/export, repair or play recorded bags"),
    "console": ("iil_robot.cli.console", "the operator's console, attached to a running graph: state at a glance, episode keys"),
    "workspace": ("iil_robot.cli.workspace", "record the workspace box while an operator jogs the arm (a profile overlay)"),
    "soak": ("iil_robot.cli.soak", "the main job's graph under a stream of bad inputs: RSS growth, restarts, lost ticks (JSON)"),
}

BENCHMARKS: dict[str, tuple[str, str]] = {
    "latency": ("iil_robot.bench.latency", "command-path latency across processes (JSON)"),
    "sim": ("iil_robot.bench.sim", "simulated arm steps/s and scripted expert success (JSON)"),
    "recorder": ("iil_robot.bench.recorder", "recorder throughput at 10x a 20 Hz loop with a 128x128 camera (JSON)"),
    "recorder-kill": ("iil_robot.bench.recorder_kill", "data a SIGKILL of the recorder loses, as left and after --repair (JSON)"),
    "learner": ("iil_robot.bench.learner", "RLPD updates/s: batched critic ensemble vs a Python loop (JSON)"),
    "sync": ("iil_robot.bench.sync", "learner publishes weights -> policy acts with them, latency (JSON)"),
    "jitter": ("iil_robot.bench.jitter", "20 Hz control tick jitter, idle and with the learner training (JSON)"),
    "workspace": ("iil_robot.bench.workspace", "simulated arm driven into each workspace wall and orientation limit (JSON)"),
    "learning": ("iil_robot.bench.learning", "RLIF vs HG-DAgger vs BC with suboptimal simulated operators (JSON, PNGs)"),
}


def _add_commands(subparsers, table: dict[str, tuple[str, str]]) -> None:
    for name, (module_name, help_text) in table.items():
        parser = subparsers.add_parser(name, help=help_text, description=help_text)
        # Options are added by the module itself, imported only for the command in use.
        parser.set_defaults(_module=module_name)


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="iil-robot", description="Teach robot arms through human interventions.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_commands(commands, COMMANDS)
    bench = commands.add_parser("bench", help="benchmarks that print one JSON object")
    _add_commands(bench.add_subparsers(dest="benchmark", metavar="BENCHMARK", required=True), BENCHMARKS)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(argv)
    # First pass finds the command; its module then adds its own options for the real parse.
    known, _ = parser.parse_known_args([a for a in argv if a not in ("-h", "--help")])
    module_name = getattr(known, "_module", None)
    if module_name is None:
        parser.print_help()
        return 0 if not argv else 2
    module = importlib.import_module(module_name)
    command_parser = _find_subparser(parser, known)
    module.add_arguments(command_parser)
    args = parser.parse_args(argv)
    _interrupt_on_termination()
    return int(module.run(args) or 0)


def _interrupt_on_termination() -> None:
    """SIGTERM and SIGHUP (a closed terminal) end a command as Ctrl-C does, so it stops the processes it started:
    each node runs in a session of its own and outlived a killed ``iil-robot sim``."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, interrupt)


def _find_subparser(parser: argparse.ArgumentParser, known: argparse.Namespace) -> argparse.ArgumentParser:
    names = [known.command] + ([known.benchmark] if known.command == "bench" else [])
    for name in names:
        action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = action.choices[name]
    return parser

