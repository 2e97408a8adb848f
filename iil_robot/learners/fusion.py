"""Fusing RLPD's updates with ``torch.compile`` without making the learner wait for the compiler.

Compiling takes tens of seconds to minutes on a CPU. It cannot run on a thread beside the eager updates: tracing
patches ``torch.nn.Module.__call__`` for the whole process (``torch.fx``'s patcher), and an eager update on another
thread then fails inside the tracer (``NameError: module is not installed as a submodule``). So a child process
compiles the same losses on a learner of the same configuration and shapes, which fills inductor's and AOTAutograd's
on-disk caches (``/tmp/torchinductor_$USER``) while the learner goes on eagerly; then the learner compiles in place
from those caches, which takes seconds. ``main`` is the child.
"""
from __future__ import annotations

import ctypes
import importlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import torch

from iil_robot.learners.buffers import ActionBox, Batch

CHILD = "import sys; from iil_robot.learners.fusion import main; sys.exit(main(sys.argv[1:]))"
"""The child's command (not ``-m``: the package has imported this module already, and runpy would run a second copy)."""


def _name(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _load(name: str) -> Any:
    module, _, attribute = name.partition(":")
    return getattr(importlib.import_module(module), attribute)


def warm_up_spec(learner: Any, batch: Batch) -> dict[str, Any]:
    """What the child needs to compile the very graphs ``learner`` (an ``RLPDLearner``) will: its class and
    configuration, sizes, device, torch threads and the shapes and dtypes of a minibatch (None for a field the batch
    lacks)."""
    config = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(learner.config).items()}
    return {"learner": _name(type(learner)), "config_class": _name(type(learner.config)),
            "obs_dim": learner.obs_dim, "act_dim": learner.act_dim, "image": list(learner.image),
            "config": config | {"compile": False}, "low": list(learner.action_box.low),
            "high": list(learner.action_box.high), "device": str(learner.device), "threads": torch.get_num_threads(),
            "batch": {f.name: None if getattr(batch, f.name) is None
                      else [list(getattr(batch, f.name).shape), str(getattr(batch, f.name).dtype).removeprefix("torch.")]
                      for f in fields(Batch)}}


def _example(spec: dict[str, Any], device: torch.device) -> Batch:
    def tensor(shape: list[int], dtype: str) -> torch.Tensor:
        kind = getattr(torch, dtype)
        if kind == torch.bool:
            return torch.rand(shape, device=device) < 0.5
        if kind == torch.uint8:
            return torch.randint(0, 256, shape, dtype=kind, device=device)
        return torch.rand(shape, device=device, dtype=kind) * 2 - 1

    return Batch(**{name: None if value is None else tensor(*value) for name, value in spec["batch"].items()})


def _die_with_parent(parent: int) -> bool:
    """In the child: be killed when the learner's thread that started it ends (Linux's PR_SET_PDEATHSIG), so no compile
    outlives a killed node. False when the learner is gone already (it ended before this was set)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)
    except (OSError, AttributeError):
        pass
    return os.getppid() == parent


def remove_orphans(root: Path) -> list[Path]:
    """Remove the folders (spec and compile log) that learners no longer running left in ``root``: a learner that
    is killed cannot clean up after its child. A folder is named after its learner's process id."""
    removed = []
    for folder in root.glob("iil_fusion_*_*"):
        pid = folder.name.split("_")[2]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
        except PermissionError:  # another user's process, alive
            pass
    return removed


class WarmUp:
    """The child process that fills the compile caches; ``poll()`` says where it stands."""

    def __init__(self, learner: Any, batch: Batch) -> None:
        remove_orphans(Path(tempfile.gettempdir()))
        self.folder = Path(tempfile.mkdtemp(prefix=f"iil_fusion_{os.getpid()}_"))
        self.log_path = self.folder / "compile.log"
        spec_path = self.folder / "spec.json"
        spec_path.write_text(json.dumps(warm_up_spec(learner, batch) | {"parent": os.getpid()}))
        self.started, self.ended = time.monotonic(), None
        with self.log_path.open("w") as log:
            self.process = subprocess.Popen([sys.executable, "-c", CHILD, str(spec_path)],
                                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def poll(self) -> str:
        """``compiling``, ``done``, or ``failed: WHY``."""
        code = self.process.poll()
        if code is None:
            return "compiling"
        if self.ended is None:
            self.ended = time.monotonic()
        if code == 0:
            shutil.rmtree(self.folder, ignore_errors=True)  # a failure's output stays, for its message
            return "done"
        lines = [line for line in self.log_path.read_text(errors="replace").splitlines() if line.strip()]
        errors = [line for line in lines if "Error" in line] or lines or [f"exit code {code}"]
        return f"failed: {errors[-1].strip()} (full output: {self.log_path})"  # the last error line; the rest in the file

    def seconds(self) -> float:
        """How long the child has run (until ``poll`` first saw it ended)."""
        return (self.ended or time.monotonic()) - self.started

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
            shutil.rmtree(self.folder, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    """The child: compile a learner like the parent's and run one critic and one actor update through it."""
    spec = json.loads(Path((argv or sys.argv[1:])[0]).read_text())
    if not _die_with_parent(spec["parent"]):
        return 1
    print(f"compiling the losses of {spec['learner']} for process {spec['parent']}", flush=True)
    torch.set_num_threads(spec["threads"])
    config = _load(spec["config_class"])(**{k: tuple(v) if isinstance(v, list) else v for k, v in spec["config"].items()})
    device = torch.device(spec["device"])
    learner = _load(spec["learner"])(spec["obs_dim"], spec["act_dim"], config, ActionBox(tuple(spec["low"]), tuple(spec["high"])),
                          device, tuple(spec["image"]))
    learner.use_compiled_losses()
    example = _example(spec, device)
    learner.update_critic(example)
    learner.update_actor(example)
    return 0
