"""Keep freed CPU memory in the process, so a training step does not fault its pages in again.

PyTorch's CPU allocator has no cache: every tensor is a ``malloc`` and every free a ``free``. With
glibc's defaults the multi-megabyte activations of a batched critic ensemble ([10, 256, 256]
floats = 2.6 MB each) are returned to the kernel at the end of each step and faulted back in,
zero-filled, in the next: ~3,000 page faults and several ms of system time per RLPD update on
CPU, more than the loop over critics (whose 256 KB tensors stay in the heap) ever pays. PyTorch's
CPU tuning guide suggests preloading jemalloc or tcmalloc for the same reason; raising glibc's
mmap and trim thresholds does it in-process, with nothing to install.
"""
from __future__ import annotations

import ctypes
import ctypes.util

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # from glibc's malloc.h
KEEP_BYTES = 1 << 30
"""Freed memory glibc keeps in the heap before trimming (and the largest block it puts there)."""


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds for this process. Returns False (and changes
    nothing) where the C library is not glibc, e.g. on macOS or musl."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # M_MMAP_THRESHOLD is capped at 32 MB (HEAP_MAX/2 on 64-bit); anything larger still gets its own mmap
    return bool(mallopt(M_MMAP_THRESHOLD, 32 << 20)) and bool(mallopt(M_TRIM_THRESHOLD, KEEP_BYTES))
