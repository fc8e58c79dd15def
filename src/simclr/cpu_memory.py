"""Keep freed memory in the process on Linux/glibc, so large CPU tensors are not page-faulted in anew.

glibc hands big allocations (activations, augmented batches) to ``mmap`` and returns them to the
kernel on ``free``; the next batch's buffers of the same size are then zero-filled and faulted in
page by page again. On a CPU training run that costs more than the arithmetic of the elementwise
ops (measured: 4-7x for the colour ops at 224 px, BENCHMARKS.md). Raising glibc's mmap and trim
thresholds keeps those blocks in the heap for reuse, as PyTorch's CUDA caching allocator does on
GPUs. It is what ``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_`` do, set from inside.
The cost: the process keeps its peak heap instead of shrinking after it. Set the environment
variable ``SIMCLR_RETAIN_FREED_MEMORY=0`` to keep glibc's defaults.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
_done: bool | None = None


def retain_freed_memory(mmap_threshold: int = 1 << 30) -> bool:
    """Raise glibc's mmap threshold to ``mmap_threshold`` bytes and never trim the heap.

    Returns whether it took effect (False off Linux, without glibc, or if glibc refuses). Safe to
    call more than once; only the first call acts.
    """
    global _done
    if _done is not None:
        return _done
    _done = False
    if not sys.platform.startswith("linux") or os.environ.get("SIMCLR_RETAIN_FREED_MEMORY", "1") == "0":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    _done = bool(mallopt(M_MMAP_THRESHOLD, mmap_threshold)) and bool(mallopt(M_TRIM_THRESHOLD, 2**31 - 1))
    return _done
