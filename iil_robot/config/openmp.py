"""How the learner's torch threads wait for each other: set before torch loads.

torch's CPU wheel runs its parallel loops on GNU OpenMP (``libgomp``, bundled with torch; MKL uses it too). By
default a libgomp thread that finishes its share of a loop spins for its peers for a while before it sleeps. On a
machine whose other cores are busy (a robot PC running the control loop) the peer it spins for is often descheduled,
and the spinning thread burns the very CPU time that peer needs: a 10-critic RLPD update at 2 threads fell from 40
to 14 updates/s beside one busy core, against 25/s for the RLIF authors' JAX learner
(docs/experiments/2026-12-07-learner-threads.md). ``OMP_WAIT_POLICY=PASSIVE`` makes waiting threads sleep at once.

libgomp reads these variables once, when it is loaded (at ``import torch``), so they can only be set in the
process's environment before that: ``openmp_defaults()`` at the top of the learner node and the learner benchmark,
before they import torch. A value already in the environment wins (``OMP_WAIT_POLICY=ACTIVE`` measures the spin).

This module imports nothing heavy (no torch).
"""
from __future__ import annotations

import os
import sys

__all__ = ["OPENMP_DEFAULTS", "openmp_defaults"]

OPENMP_DEFAULTS = {"OMP_WAIT_POLICY": "PASSIVE"}
"""The learner's OpenMP settings (libgomp): threads that wait for a peer sleep instead of spinning."""


def openmp_defaults() -> str | None:
    """Put ``OPENMP_DEFAULTS`` into this process's environment where not set already. Returns what could not be
    done (torch is loaded already: its OpenMP runtime keeps the settings it started with), or None."""
    for name, value in OPENMP_DEFAULTS.items():
        os.environ.setdefault(name, value)
    if "torch" in sys.modules:
        return (f"torch was imported before the learner's OpenMP settings ({', '.join(OPENMP_DEFAULTS)}) were set: its "
                "threads keep spin-waiting, which slows training on a busy machine; set them in the environment of the "
                "process instead")
    return None
