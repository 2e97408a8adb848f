"""ROS domains for tests, each claimed under an exclusive file lock.

Two graphs on one domain hear each other's topics, so a test whose domain another running test
also uses sees messages it never sent. Claims are locked (``flock``) in one folder of the
machine's temp directory, so concurrent test runs (pytest-xdist workers, a second checkout, a
soak beside the suite) never share a domain; a lock dies with its process, so a killed run
leaves nothing behind. A claim takes the free domain released longest ago (a released lock file
is touched), so a domain whose last graph may still be shutting down (a learner publishing its
last weights) is the last one handed out again, by any process.
"""
from __future__ import annotations

import fcntl
import os
import tempfile
from pathlib import Path

FIRST, LAST = 20, 99
"""The domains tests take (0-101 are safe on Linux; 101 is the soak's default, the benchmarks' own defaults lie in here
but tests always pass one they claimed)."""
LOCK_DIR = Path(tempfile.gettempdir()) / "iil-test-domains"


class DomainClaim:
    """``count`` consecutive domains from ``first``, held until ``release`` (or the process ends)."""

    def __init__(self, first: int, files: list[int]) -> None:
        self.first, self._files = first, files

    @property
    def ids(self) -> range:
        return range(self.first, self.first + len(self._files))

    def release(self) -> None:
        for fd in self._files:
            os.utime(fd)  # released now: the last to be claimed again
            os.close(fd)  # closing the descriptor drops its lock
        self._files = []


def _lock(domain: int) -> int | None:
    fd = os.open(LOCK_DIR / f"{domain}.lock", os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _released(domain: int) -> float:
    try:
        return (LOCK_DIR / f"{domain}.lock").stat().st_mtime
    except FileNotFoundError:
        return 0.0  # never used


def claim(count: int = 1) -> DomainClaim:
    """The free block of ``count`` domains in ``FIRST``..``LAST`` released longest ago; RuntimeError when every one is
    taken."""
    LOCK_DIR.mkdir(exist_ok=True)
    starts = sorted(range(FIRST, LAST - count + 2), key=lambda first: max(_released(d) for d in range(first, first + count)))
    for first in starts:
        held: list[int] = []
        for domain in range(first, first + count):
            fd = _lock(domain)
            if fd is None:
                break
            held.append(fd)
        if len(held) == count:
            return DomainClaim(first, held)
        for fd in held:
            os.close(fd)
    raise RuntimeError(f"no {count} free ROS domain(s) in {FIRST}-{LAST}: other test runs hold them all ({LOCK_DIR})")
