"""A learner's CPU priority (niced, or SCHED_IDLE), how much CPU a thread gets and how long it waits for one, and
what the CPU is (its model and flags).

A learner runs niced so that the control nodes always win the CPU (``lower_priority``). On a machine whose cores
something else keeps busy it then gets almost none, and training slows down or stops without an error. The time a
thread spends runnable but waiting for a CPU (``/proc/self/task/TID/schedstat``, second field) tells that apart from
a learner that is idle because it has nothing to learn from (``ThreadCpu``).
"""
from __future__ import annotations

import os
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

CPUINFO = Path("/proc/cpuinfo")


def cpu_info() -> tuple[str, set[str]]:
    """The CPU's model name and flags (``CPUINFO``'s first processor). Raises OSError where it cannot be read."""
    lines = CPUINFO.read_text().splitlines()
    model = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "unknown")
    flags = next((set(line.split(":", 1)[1].split()) for line in lines if line.startswith("flags")), set())
    return model, flags


def lower_priority(nice: int) -> str | None:
    """Nice the calling thread (and the threads it starts after) by ``nice``, and this process's autogroup too when
    it leads its own session (as the sim job starts every node). Returns what could not be done, or None.

    Under autogroup scheduling (Linux's default, ``/proc/sys/kernel/sched_autogroup_enabled``) the CPU is shared
    between sessions first, and niceness orders only the tasks inside one: a CPU-bound process at nice 19 in a
    session of its own delayed a 20 Hz sleeper's wakeups by 3.4-3.8 ms (p99) on 2 cores, against 0.19 ms once its
    autogroup was niced as well. A process that does not lead its session shares the autogroup with others (the
    nodes of one ``ros2 launch``), and there plain niceness already works."""
    os.nice(nice)
    if nice == 0 or os.getsid(0) != os.getpid():
        return None
    problem = "busy"
    for _ in range(3):
        try:
            Path("/proc/self/autogroup").write_text(str(nice))
            return None
        except FileNotFoundError:  # a kernel without autogroup scheduling
            return None
        except BlockingIOError:  # unprivileged writes: one per 100 ms on the whole machine
            time.sleep(0.1)
        except OSError as err:
            problem = str(err)
            break
    return (f"cannot nice this session's autogroup ({problem}): training competes with the control nodes' sessions "
            "at normal priority")


def idle_priority() -> str | None:
    """Run the calling thread under SCHED_IDLE (Linux schedules threads one by one; threads it starts after inherit
    it): it gets a CPU only when nothing else wants one. Returns what could not be done, or None."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        return None
    except (AttributeError, OSError) as err:
        return f"cannot train at idle CPU priority ({err}): training runs niced only; set idle_priority: false to silence this"


@dataclass(frozen=True)
class CpuShare:
    """One thread's use of the CPU over a window of wall-clock time."""

    seconds: float
    """The window's length."""
    running: float
    """Fraction of the window the thread ran on a CPU."""
    waiting: float
    """Fraction of the window the thread was runnable but waited for a CPU (other threads had them)."""


def read_schedstat(tid: int) -> tuple[float, float] | None:
    """(seconds run, seconds waited for a CPU) of thread ``tid`` of this process; None where the kernel keeps no
    scheduler statistics (``CONFIG_SCHED_INFO``) or the thread has ended."""
    try:
        fields = Path(f"/proc/self/task/{tid}/schedstat").read_text().split()
        return int(fields[0]) / 1e9, int(fields[1]) / 1e9
    except (OSError, ValueError, IndexError):
        return None


class ThreadCpu:
    """The CPU share of one thread over the last ``span`` seconds (longer until two calls are that far apart)."""

    def __init__(self, tid: int, span: float = 5.0, clock: Callable[[], float] = time.monotonic,
                 read: Callable[[int], tuple[float, float] | None] = read_schedstat) -> None:
        self.tid, self.span, self.clock, self.read = tid, span, clock, read
        self._samples: deque[tuple[float, tuple[float, float]]] = deque()
        self._sample()

    def window(self) -> CpuShare | None:
        """The share from the oldest sample within ``span`` to now; None when the statistics cannot be read."""
        if not self._sample() or len(self._samples) < 2:
            return None
        now = self._samples[-1][0]
        while len(self._samples) > 2 and now - self._samples[1][0] >= self.span:
            self._samples.popleft()
        (then, before), (_, after) = self._samples[0], self._samples[-1]
        seconds = now - then
        if seconds <= 0:
            return None
        return CpuShare(seconds, (after[0] - before[0]) / seconds, (after[1] - before[1]) / seconds)

    def _sample(self) -> bool:
        stat = self.read(self.tid)
        if stat is not None:
            self._samples.append((self.clock(), stat))
        return stat is not None
