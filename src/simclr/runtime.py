"""Where and how a run computes: the device, autocast precision, and the process's memory habits.

``pick_device`` turns ``--device`` into a ``torch.device``, ``check_precision`` refuses a precision
the device cannot run, ``autocast_context`` is the autocast block of a precision, and ``prepare_device``
sets what a device wants before training: cuDNN's autotuner on CUDA; on a CPU, freed memory kept
in the process (below).

Keep freed memory in the process on Linux/glibc, so large CPU tensors are not page-faulted in anew.

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

import contextlib
import ctypes
import ctypes.util
import os
import sys

import torch

from simclr.errors import SimCLRError

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


PRECISIONS = ("fp32", "bf16", "fp16")


def pick_device(name: str) -> torch.device:
    """``auto`` (CUDA when available, else the CPU), or the device named (``cpu``, ``cuda``, ``cuda:1``)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError as e:
        raise SimCLRError(f"--device {name!r} is not a device (try cpu, cuda, cuda:1)") from e
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SimCLRError("--device cuda was asked for but no CUDA GPU is available; use --device cpu")
    return dev


def check_precision(precision: str, device: torch.device) -> None:
    """Refuse a precision the device cannot run well: fp16 off CUDA, bf16 on a GPU without it."""
    if precision not in PRECISIONS:
        raise SimCLRError(f"--precision {precision!r} is not valid: choose one of {', '.join(PRECISIONS)}")
    if precision == "fp16" and device.type != "cuda":
        raise SimCLRError("--precision fp16 needs a CUDA GPU; on the CPU use bf16 (or fp32)")
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise SimCLRError("this GPU has no bf16; use --precision fp16 (with a grad scaler) or fp32")


def autocast_context(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """The autocast block of ``precision`` on ``device`` (nothing for fp32)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def to_channels_last(x: torch.Tensor) -> torch.Tensor:
    """A batch in the channels_last memory format (the ``prepare`` of runs with channels_last on)."""
    return x.contiguous(memory_format=torch.channels_last)


def prepare_device(device: torch.device) -> None:
    """Settings a device wants before training: on CUDA cuDNN's autotuner (the input shapes of a run
    are fixed, so the fastest convolution algorithm is found once); on a CPU, freed memory kept for
    reuse (``retain_freed_memory``)."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    elif device.type == "cpu":
        retain_freed_memory()  # reuse freed activation / view buffers instead of faulting pages in again


__all__ = [
    "PRECISIONS", "autocast_context", "check_precision", "pick_device", "prepare_device", "retain_freed_memory",
    "to_channels_last",
]
