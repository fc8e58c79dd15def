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
from collections.abc import Callable, Sequence

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
PRECISION_CHOICES = ("auto", *PRECISIONS)
SPEEDUP_NEEDED = 1.1  # bf16 is chosen on an AVX512-BF16 CPU only when a measured step is this much faster


def cpu_flags() -> set[str]:
    """The CPU's feature flags (``/proc/cpuinfo``; empty where it does not exist). ``SIMCLR_CPU_FLAGS``
    (space-separated) replaces them: to test the choice of ``--precision auto``, or to override it."""
    forced = os.environ.get("SIMCLR_CPU_FLAGS")
    if forced is not None:
        return set(forced.split())
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def speedup_of(fp32_times: Sequence[float], bf16_times: Sequence[float]) -> float:
    """fp32 time / bf16 time of one step, each taken as its fastest repeat: other work on the cores only
    ever adds time, so the fastest of a few repeats is the step's own cost (a median still moves with
    the load, and a loaded second of timing could flip the choice between two commands of one run)."""
    return min(fp32_times) / max(min(bf16_times), 1e-12)


def measured_bf16_speedup(repeats: int = 7) -> float:
    """fp32 time / bf16-autocast time of a small conv + linear forward and backward on the CPU (the
    two alternated, ``repeats`` each after two warm-ups; about a second). Above 1: bf16 is faster here."""
    import time

    torch.manual_seed(0)
    conv = torch.nn.Conv2d(64, 64, 3, padding=1)
    fc = torch.nn.Linear(64 * 14 * 14, 256)
    x = torch.randn(32, 64, 14, 14)

    def step(precision: str) -> float:
        start = time.perf_counter()
        with autocast_context(precision, torch.device("cpu")):
            out = fc(torch.relu(conv(x)).flatten(1)).float().sum()
        out.backward()
        return time.perf_counter() - start

    times: dict[str, list[float]] = {"fp32": [], "bf16": []}
    for i in range(2 + repeats):  # alternated, so that a burst of other work falls on both; two warm-ups
        for precision, taken in times.items():
            t = step(precision)
            if i >= 2:
                taken.append(t)
    return speedup_of(times["fp32"], times["bf16"])


def choose_precision(device: torch.device, flags: set[str] | None = None,
                     speedup: Callable[[], float] = measured_bf16_speedup) -> tuple[str, str]:
    """What ``--precision auto`` runs on ``device``, and why: bf16 autocast where the hardware runs bf16
    natively (a CUDA device with bf16; a CPU with AMX-BF16; a CPU with AVX512-BF16 where a bf16 step
    measures faster, since on some such CPUs it is slower), fp32 elsewhere (emulated bf16 is about
    13x slower)."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        if torch.cuda.is_bf16_supported():
            return "bf16", f"{name} runs bf16 natively"
        return "fp32", f"{name} has no bf16"
    if device.type != "cpu":
        return "fp32", f"no bf16 rule for {device.type} devices"
    flags = cpu_flags() if flags is None else flags
    if "amx_bf16" in flags:
        return "bf16", "the CPU has AMX-BF16"
    if "avx512_bf16" in flags:
        ratio = speedup()
        if ratio >= SPEEDUP_NEEDED:
            return "bf16", f"the CPU has AVX512-BF16 and a bf16 step measured {ratio:.2f}x the speed of fp32"
        return "fp32", (f"the CPU has AVX512-BF16 but a bf16 step measured only {ratio:.2f}x the speed of fp32 here "
                        "(pass --precision bf16 to use it anyway)")
    return "fp32", "the CPU has no native bf16 (no amx_bf16 or avx512_bf16 flag; emulated bf16 is about 13x slower)"


def resolve_precision(precision: str, device: torch.device) -> tuple[str, str | None]:
    """(``precision`` itself, None), or for ``auto`` (the choice of ``choose_precision``, the line that
    says it). Runs print the line once their input is checked: bad input stays one line."""
    if precision != "auto":
        return precision, None
    choice, why = choose_precision(device)
    return choice, f"precision auto: {choice} ({why})"


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
    "PRECISIONS", "PRECISION_CHOICES", "autocast_context", "check_precision", "choose_precision", "cpu_flags",
    "measured_bf16_speedup", "pick_device", "prepare_device", "resolve_precision", "retain_freed_memory",
    "to_channels_last",
]
