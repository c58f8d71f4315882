"""Process-wide glibc malloc settings for eager PyTorch on the CPU.

Eager PyTorch allocates its big activations afresh on every call. By default glibc serves blocks
above its mmap threshold with fresh mmaps and unmaps them on free, so every training step or
forward pass pays the page faults again. :func:`keep_freed_memory` turns that off once per process
(``mallopt(M_MMAP_MAX, 0)``, ``mallopt(M_TRIM_THRESHOLD, 1 GiB)``; the same as the environment
variables ``MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=1073741824``): freed memory stays with the
process for reuse, so peak RSS can grow. ONNX Runtime reuses its own arena and is unaffected.
Measured in ``benchmarks/RESULTS.md``: the compact N-MNIST training step goes from 44 to 98
samples/s (eager, 2 threads). Dependency-free, so the torch-free runtime can hold it.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import platform

_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4


def keep_freed_memory() -> str:
    """Apply the settings to this process; returns what was done (for logs and table notes)."""
    name = ctypes.util.find_library("c")
    if platform.system() != "Linux" or not name:
        return "not applied (needs Linux glibc)"
    libc = ctypes.CDLL(name)
    if libc.mallopt(_M_MMAP_MAX, 0) != 1 or libc.mallopt(_M_TRIM_THRESHOLD, 1 << 30) != 1:
        return "not applied (mallopt refused)"
    return "mallopt(M_MMAP_MAX=0, M_TRIM_THRESHOLD=1 GiB)"
