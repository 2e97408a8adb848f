"""Freed memory kept in the heap for speed, and handed back now and then."""
from __future__ import annotations

import subprocess
import sys

PROBE = """
import os
from iil_robot.learners.memory import keep_freed_memory, trim_freed_memory

def rss_mb():
    return int(open(f"/proc/{os.getpid()}/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6

assert keep_freed_memory()
blocks = [bytearray(256 * 1024) for _ in range(800)]  # 200 MB in pieces below the mmap threshold: on the heap
for block in blocks:
    block[::4096] = b"x" * len(block[::4096])  # touch every page
del blocks
kept = rss_mb()
assert trim_freed_memory()
print(kept, rss_mb())
"""


def test_freed_memory_stays_in_the_process_until_it_is_trimmed():
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    kept, trimmed = map(float, out.stdout.split())
    assert kept - trimmed > 150, (kept, trimmed)  # the 200 MB went back to the kernel only at the trim
