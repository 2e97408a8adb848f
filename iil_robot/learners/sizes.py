"""The learners' network sizes and update budget by device: what a CPU can train in real time, and a GPU.

The algorithm configs (``rlpd.*``, ``hgdagger.*``, ...) hold the GPU sizes: RLPD's 10 critics of 256x256 at batch 256
and UTD 4. A CPU beside the control loop cannot keep those up with a 20 Hz arm (see ``CpuSizes``), so a learner that
trains on the CPU swaps in smaller ones for those left at their defaults (``TrainerConfig.size``: ``auto`` does so
exactly when it trains on the CPU); a size set to anything else is a choice, and stays.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar

import torch

from iil_robot.learners.configs import LearnerConfigs

__all__ = ["SIZES", "CpuSizes", "chosen_size", "describe", "sized"]

SIZES = ("auto", "cpu", "gpu")
"""Values of ``TrainerConfig.size``."""


@dataclass(frozen=True)
class CpuSizes:
    """What the learners train with on a CPU (``TrainerConfig.size`` ``cpu``, or ``auto`` on the CPU), in place of
    the algorithm configs' fields of the same names that are left at their defaults. Chosen from
    ``iil-robot bench learner --busy-cores 1`` on 2 cores, since the sim's other nodes keep about one busy (figures:
    docs/experiments/2026-12-07-learner-threads.md): at the budget of 0.5 updates per env step a 20 Hz arm needs 10
    updates/s."""

    RANGES: ClassVar[dict[str, tuple[float, float]]] = {"hidden": (1, 4096), "num_qs": (1, 64), "utd_ratio": (1, 1000),
                                                        "batch_size": (2, 65536)}
    """Valid range of each numeric field (node parameters are declared with them)."""

    hidden: tuple[int, ...] = (128, 128)
    """Hidden layer sizes of every learner's networks."""
    num_qs: int = 5
    """RLPD's critics (the target's subset, ``rlpd.num_min_qs``, is capped at this)."""
    utd_ratio: int = 2
    """RLPD's critic updates per update."""
    batch_size: int = 128
    """Every learner's minibatch."""

    def __post_init__(self) -> None:
        if not self.hidden or min(self.hidden) < 1 or self.num_qs < 1 or self.utd_ratio < 1 or self.batch_size < 2:
            raise ValueError(f"cpu sizes {self}: hidden needs at least one layer of >= 1 unit, num_qs and utd_ratio >= 1, "
                             "batch_size >= 2")


def chosen_size(size: str, device: torch.device) -> str:
    """``cpu`` or ``gpu``: ``size`` itself, or for ``auto`` the one that fits ``device``.

    Raises:
        ValueError: ``size`` is not one of ``SIZES``.
    """
    if size not in SIZES:
        raise ValueError(f"size {size!r} is unknown; choose one of {SIZES} (auto: cpu sizes when training on the CPU)")
    if size == "auto":
        return "cpu" if device.type == "cpu" else "gpu"
    return size


def sized(configs: LearnerConfigs, size: str, cpu: CpuSizes = CpuSizes()) -> LearnerConfigs:
    """``configs`` for ``size`` (``cpu`` or ``gpu``): as given for ``gpu``; for ``cpu`` with ``cpu``'s sizes in place of
    those left at their config class's (GPU-sized) default. A size set to anything else was chosen, and stays."""
    if size == "gpu":
        return configs
    changed = {}
    for name, config in configs.as_dict().items():
        default, wanted = type(config)(), {"hidden": cpu.hidden, "batch_size": cpu.batch_size}
        if name == "rlpd":
            wanted |= {"num_qs": cpu.num_qs, "utd_ratio": cpu.utd_ratio}
        changes = {k: v for k, v in wanted.items() if getattr(config, k) == getattr(default, k)}
        if "num_qs" in changes:
            changes["num_min_qs"] = min(config.num_min_qs, changes["num_qs"])
        changed[name] = replace(config, **changes)
    return LearnerConfigs(**changed)


def describe(configs: LearnerConfigs, algorithm: str) -> str:
    """The sizes ``algorithm`` trains with, in one line, e.g. ``5 critics [128, 128], UTD 2, batch 128``."""
    config = configs.of(algorithm)
    hidden = list(config.hidden)
    if algorithm == "rlpd":
        return f"{config.num_qs} critics {hidden}, UTD {config.utd_ratio}, batch {config.batch_size}"
    return f"networks {hidden}, batch {config.batch_size}"
