"""Start, watch and stop the nodes of a graph as separate processes, without ``ros2 launch``.

The pip wheels of ROS 2 have no ``launch``, so the ``iil-robot`` commands and the tests start
the nodes themselves: one process per node, DDS kept on this machine, each process's output in
a log file whose last lines are reported if it dies. Stopping sends SIGINT to each process by
PID (the nodes publish a final zero command on it), then SIGTERM, then SIGKILL.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Mapping

LOCALHOST = "LOCALHOST"


def domain_problem(domain_id: int) -> str | None:
    """Why a graph must not be started on ``domain_id``, or None."""
    if 0 <= domain_id <= 101 or 215 <= domain_id <= 232:
        return None
    return (f"ROS_DOMAIN_ID={domain_id} must be in [0, 101] or [215, 232] (the ranges safe on Linux: the others' ports "
            "collide with ephemeral ones)")


def add_domain_argument(parser: argparse.ArgumentParser, help: str, default: int | None = None, count: int = 1,
                        starts_graph: bool = True) -> None:
    """``--domain-id``, checked as it is parsed, so a bad one is a usage error naming it. Default: ``default``, else
    ``$ROS_DOMAIN_ID`` or 0. A command that starts a graph (on ``count`` consecutive domains) needs the ranges safe on
    Linux; one that attaches to a running graph takes any domain ROS 2 allows (0-232), as that graph was started on."""
    def domain(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a ROS domain: give a whole number (--domain-id or "
                                             "$ROS_DOMAIN_ID)") from None
        if not starts_graph and not 0 <= value <= 232:
            raise argparse.ArgumentTypeError(f"ROS_DOMAIN_ID={value} must be in [0, 232] (--domain-id or $ROS_DOMAIN_ID)")
        for domain_id in range(value, value + count) if starts_graph else ():
            if problem := domain_problem(domain_id):
                raise argparse.ArgumentTypeError(problem + (f"; this command uses {count} domains from the one given"
                                                            if count > 1 else ""))
        return value

    parser.add_argument("--domain-id", type=domain, help=help,
                        default=os.environ.get("ROS_DOMAIN_ID", "0") if default is None else str(default))


def loopback_env(domain_id: int, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for ROS processes that keeps DDS discovery on 127.0.0.1, in its own domain."""
    if problem := domain_problem(domain_id):
        raise ValueError(problem)
    env = dict(os.environ if base is None else base)
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = LOCALHOST
    env.pop("ROS_STATIC_PEERS", None)
    env["ROS_DOMAIN_ID"] = str(domain_id)
    env["PYTHONUNBUFFERED"] = "1"
    return env


HELD_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextmanager
def _signals_held() -> Iterator[None]:
    """Run the body with SIGINT, SIGTERM and SIGHUP held, then act on the first that came.

    A KeyboardInterrupt raised inside ``subprocess.Popen`` (between its fork and its return) or before the process
    is registered loses its PID, and a node in a session of its own outlives the command that started it. Python
    handlers can only be changed on the main thread; elsewhere the body runs as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, frame: caught.append(signum)) for sig in HELD_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        if caught:
            handler = previous[caught[0]]
            if callable(handler):
                handler(caught[0], None)
            elif handler in (signal.SIG_DFL, None):
                os.kill(os.getpid(), caught[0])  # its default action, now that the handler is back


def _ros_value(value: object) -> str:
    """A ``-p name:=value`` value: rcl parses it as YAML, so strings are quoted (empty ones too)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_ros_value(v) for v in value) + "]"
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a YAML string: "", "a: b", "0.7" stay strings
    return str(value)


@dataclass(frozen=True)
class NodeSpec:
    """One node process."""

    name: str
    """Node name (``__node`` remap) and process name in logs and reports."""
    module: str
    """Python module with the node's ``main``, e.g. ``iil_robot.nodes.mux``."""
    params_files: tuple[str, ...] = ()
    """YAML parameter files, in order."""
    parameters: Mapping[str, object] = field(default_factory=dict)
    """Single parameters (``-p name:=value``), applied after the files."""
    remappings: Mapping[str, str] = field(default_factory=dict)
    """Topic remappings (``-r from:=to``)."""

    def command(self, python: str = sys.executable) -> list[str]:
        cmd = [python, "-m", self.module, "--ros-args", "-r", f"__node:={self.name}"]
        for path in self.params_files:
            cmd += ["--params-file", str(path)]
        for key, value in self.parameters.items():
            cmd += ["-p", f"{key}:={_ros_value(value)}"]
        for src, dst in self.remappings.items():
            cmd += ["-r", f"{src}:={dst}"]
        return cmd


@dataclass
class Process:
    spec: NodeSpec
    popen: subprocess.Popen
    log_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid


class Graph:
    """A set of node processes that start and stop together."""

    def __init__(self, env: Mapping[str, str], log_dir: Path) -> None:
        self.env = dict(env)
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.processes: dict[str, Process] = {}

    def start(self, spec: NodeSpec) -> Process:
        if spec.name in self.processes:
            raise ValueError(f"a process named {spec.name!r} is already running")
        log_path = self.log_dir / f"{spec.name}.log"
        with open(log_path, "ab") as log, _signals_held():  # a started process is always in self.processes
            popen = subprocess.Popen(spec.command(), env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
            process = Process(spec, popen, log_path)
            self.processes[spec.name] = process
        return process

    def crashed(self) -> list[Process]:
        """Processes that have exited on their own."""
        return [p for p in self.processes.values() if p.popen.poll() is not None]

    def tail(self, name: str, lines: int = 20) -> str:
        text = self.processes[name].log_path.read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def report(self, process: Process, lines: int = 20) -> str:
        """What a person needs when a node died: its name, exit code and last log lines."""
        code = process.popen.returncode
        how = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        return (f"process {process.spec.name!r} (pid {process.pid}) died with {how}; last lines of {process.log_path}:\n"
                + self.tail(process.spec.name, lines))

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to one process by PID (tests use this to kill a node hard)."""
        os.kill(self.processes[name].pid, sig)

    def stop(self, name: str | None = None, timeout: float = 5.0) -> dict[str, int]:
        """Stop one or all processes: SIGINT, then SIGTERM, then SIGKILL. Returns exit codes."""
        targets = [self.processes[name]] if name else list(self.processes.values())
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
            alive = [p for p in targets if p.popen.poll() is None]
            for p in alive:
                try:
                    os.kill(p.pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + timeout
            for p in alive:
                try:
                    p.popen.wait(timeout=max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    pass
            if all(p.popen.poll() is not None for p in targets):
                break
        codes = {p.spec.name: p.popen.wait() for p in targets}
        for p in targets:
            del self.processes[p.spec.name]
        return codes

    def __enter__(self) -> "Graph":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
