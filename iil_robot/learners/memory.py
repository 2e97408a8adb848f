"""Keep freed CPU memory in the process, so a training step does not fault its pages in again.

PyTorch's CPU allocator has no cache: every tensor is a ``malloc`` and every free a ``free``. With
glibc's defaults the multi-megabyte activations of a batched critic ensemble ([10, 256, 256]
floats = 2.6 MB each) are returned to the kernel at the end of each step and faulted back in,
zero-filled, in the next: ~3,000 page faults and several ms of system time per RLPD update on
CPU, more than the loop over critics (whose 256 KB tensors stay in the heap) ever pays. PyTorch's
CPU tuning guide suggests preloading jemalloc or tcmalloc for the same reason; raising glibc's
mmap and trim thresholds does it in-process, with nothing to install.

The price is that freed memory is never handed back, and over a long run the heap's free pieces add
up: a learner fed 38,000 steps (half an hour at 20 Hz) grew 7.6 % after its first two minutes.
``trim_freed_memory`` now and then (the learner node: every ``TRIM_PERIOD``) hands it back; the same
run then grew 3.0 %, mostly its replay buffers filling, and held 90 MB less. One trim costs the next
update its page faults again, a few milliseconds once.
"""
from __future__ import annotations

import ctypes
import ctypes.util

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # from glibc's malloc.h
KEEP_BYTES = 1 << 30
"""Freed memory glibc keeps in the heap before trimming (and the largest block it puts there)."""
TRIM_PERIOD = 30.0
"""Seconds between ``trim_freed_memory`` calls of a long-running learner."""


def _libc():
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds for this process. Returns False (and changes
    nothing) where the C library is not glibc, e.g. on macOS or musl."""
    mallopt = getattr(_libc(), "mallopt", None)
    if mallopt is None:
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # M_MMAP_THRESHOLD is capped at 32 MB (HEAP_MAX/2 on 64-bit); anything larger still gets its own mmap
    return bool(mallopt(M_MMAP_THRESHOLD, 32 << 20)) and bool(mallopt(M_TRIM_THRESHOLD, KEEP_BYTES))


def trim_freed_memory() -> bool:
    """Hand the heap's free memory back to the kernel (glibc's ``malloc_trim``); False where there is none to call."""
    trim = getattr(_libc(), "malloc_trim", None)
    if trim is None:
        return False
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    trim(0)
    return True
