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
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

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


def gpu_precision(name: str, capability: tuple[int, int]) -> tuple[str, str]:
    """What ``--precision auto`` runs on a GPU of this compute ``capability``, and why: bf16 from 8.0
    (Ampere and later: bf16 tensor cores, cuDNN's bf16 convolutions), fp16 with a grad scaler on 7.x
    (Volta, Turing: fp16 tensor cores, no fast bf16), fp32 below. ``torch.cuda.is_bf16_supported()`` is
    no guide: current torch answers True wherever a bf16 tensor can be made, T4 and V100 included."""
    major, minor = capability
    card = f"{name} (compute capability {major}.{minor})"
    if major >= 8:
        return "bf16", f"{card} runs bf16 natively"
    if major == 7:
        return "fp16", f"{card} has fp16 tensor cores but no fast bf16; fp16 runs with a grad scaler"
    return "fp32", f"{card} has neither fast bf16 nor fp16 tensor cores"


def cuda_card(device: torch.device) -> tuple[str, tuple[int, int]]:
    """(name, compute capability) of the CUDA ``device`` itself (not the current device)."""
    return torch.cuda.get_device_name(device), tuple(torch.cuda.get_device_capability(device))  # type: ignore[return-value]


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``; the platform's processor string elsewhere)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine() or "cpu"


def cache_dir() -> Path:
    """Where simclr keeps what it learns about this machine: ``$SIMCLR_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/simclr``, else ``~/.cache/simclr``."""
    if os.environ.get("SIMCLR_CACHE_DIR"):
        return Path(os.environ["SIMCLR_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "simclr"


PRECISION_CACHE = "precision.json"


def busy() -> float | None:
    """The 1-minute load average where other work keeps at least half the cores busy, else None (also where
    the platform has no load average)."""
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        return None
    return load if load >= 0.5 * (os.cpu_count() or 1) else None


def cached_choice(key: str, decide: Callable[[], tuple[str, str]]) -> tuple[str, str]:
    """``decide()``'s (precision, why) for the machine ``key``, measured once and then read from
    ``cache_dir() / PRECISION_CACHE``, so that every command on one machine (pretrain, its evaluations, a
    resume) runs the same precision. A measurement made while other work keeps the cores busy (``busy``)
    is used but not kept: a timing under load can pick fp32 where bf16 is faster. A cache that cannot be
    read or written is no error: the choice is then made again."""
    path = cache_dir() / PRECISION_CACHE
    try:
        table = json.loads(path.read_text())
        if not isinstance(table, dict):
            table = {}
    except (OSError, ValueError):
        table = {}
    hit = table.get(key)
    if isinstance(hit, dict) and hit.get("precision") in PRECISIONS and isinstance(hit.get("why"), str):
        return hit["precision"], f"{hit['why']}; cached on {hit.get('date', '?')} in {path}: delete it to measure again"
    load = busy()
    choice, why = decide()
    if load is not None:  # a timing under load can land either way: this command's choice only
        return choice, f"{why}; not cached: the machine was busy (load {load:.1f} on {os.cpu_count()} cores)"
    table[key] = {"precision": choice, "why": why, "date": time.strftime("%Y-%m-%d")}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(table, indent=1, sort_keys=True) + "\n")
        os.replace(tmp, path)
    except OSError:
        pass
    return choice, why


def choose_precision(device: torch.device, flags: set[str] | None = None,
                     speedup: Callable[[], float] | None = None) -> tuple[str, str]:
    """What ``--precision auto`` runs on ``device``, and why.

    GPUs: by the device's compute capability (``gpu_precision``). CPUs: bf16 autocast with AMX-BF16;
    with AVX512-BF16 only where a bf16 step measures at least ``SPEEDUP_NEEDED`` times faster (on some
    such CPUs it is slower), that measurement made once per machine and torch version
    (``cached_choice``); fp32 elsewhere (emulated bf16 is about 13x slower)."""
    if device.type == "cuda":
        return gpu_precision(*cuda_card(device))
    if device.type != "cpu":
        return "fp32", f"no bf16 rule for {device.type} devices"
    flags = cpu_flags() if flags is None else flags
    if "amx_bf16" in flags:
        return "bf16", "the CPU has AMX-BF16"
    if "avx512_bf16" in flags:
        def measure() -> tuple[str, str]:
            ratio = (speedup or measured_bf16_speedup)()
            if ratio >= SPEEDUP_NEEDED:
                return "bf16", f"the CPU has AVX512-BF16 and a bf16 step measured {ratio:.2f}x the speed of fp32"
            return "fp32", (f"the CPU has AVX512-BF16 but a bf16 step measured only {ratio:.2f}x the speed of fp32 "
                            "here (pass --precision bf16 to use it anyway)")

        return cached_choice(machine_key(device, flags), measure)
    return "fp32", "the CPU has no native bf16 (no amx_bf16 or avx512_bf16 flag; emulated bf16 is about 13x slower)"


BF16_FLAGS = frozenset({"amx_bf16", "avx512_bf16"})  # the native bf16 of CPUs


def machine_key(device: torch.device, flags: set[str] | None = None) -> str:
    """What ``--precision auto``'s choice depends on: the GPU (name, compute capability) or the CPU (model,
    its native-bf16 flags: ``flags``, else this CPU's), and the torch version. Checkpoints keep it beside the
    precision that ran; ``choose_precision`` keys its cached measurement by it."""
    if device.type == "cuda":
        name, (major, minor) = cuda_card(device)
        where = f"cuda | {name} | {major}.{minor}"
    elif device.type == "cpu":
        native = (cpu_flags() if flags is None else flags) & BF16_FLAGS
        where = f"cpu | {cpu_model()} | {' '.join(sorted(native)) or 'no native bf16'}"
    else:
        where = device.type
    return f"{where} | torch {torch.__version__}"


def resolve_precision(precision: str, device: torch.device,
                      started: dict[str, Any] | None = None) -> tuple[str, str | None]:
    """(``precision`` itself, None), or for ``auto`` (the choice of ``choose_precision``, the line that
    says it). Runs print the line once their input is checked: bad input stays one line. What a run
    asked for (``auto``) is what its config.yaml keeps; the resolved precision goes to its log, metrics
    and checkpoints (``started``: the checkpoint's ``{"ran": precision, "machine": machine_key}``). A
    resumed run keeps the precision it ran in where the machine is the same (a timing under load may
    otherwise choose the other one half-way); on another machine it decides again."""
    if precision != "auto":
        return precision, None
    if started and started.get("ran") in PRECISIONS and started.get("machine") == machine_key(device):
        return started["ran"], (f"precision auto: {started['ran']} (the run's choice when it started, on this "
                                "machine: kept, so that its resumed steps compute as its first ones)")
    choice, why = choose_precision(device)
    return choice, f"precision auto: {choice} ({why})"


def pick_device(name: str) -> torch.device:
    """``auto`` (CUDA when available, else the CPU), or the device named (``cpu``, ``cuda``, ``cuda:1``).
    A CUDA device always carries its index (``cuda`` is the current GPU, ``cuda:0`` unless one was set):
    the device a tensor lands on, DDP's ``device_ids`` and capability queries then name the same GPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(name)
    except RuntimeError as e:
        raise SimCLRError(f"--device {name!r} is not a device (try cpu, cuda, cuda:1)") from e
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise SimCLRError("--device cuda was asked for but no CUDA GPU is available; use --device cpu")
        count = torch.cuda.device_count()
        if dev.index is None:
            dev = torch.device("cuda", torch.cuda.current_device())
        elif dev.index >= count:
            raise SimCLRError(f"--device {name}: this machine has {count} visible GPU{'s' if count != 1 else ''} "
                              f"(cuda:0 to cuda:{count - 1})")
    return dev


def check_precision(precision: str, device: torch.device) -> None:
    """Refuse a precision the device cannot run well: fp16 off CUDA, bf16 on a GPU below compute
    capability 8.0 (no bf16 tensor cores or cuDNN bf16 convolutions there)."""
    if precision not in PRECISIONS:
        raise SimCLRError(f"--precision {precision!r} is not valid: choose one of {', '.join(PRECISIONS)}")
    if precision == "fp16" and device.type != "cuda":
        raise SimCLRError("--precision fp16 needs a CUDA GPU; on the CPU use bf16 (or fp32)")
    if precision == "bf16" and device.type == "cuda":
        name, (major, minor) = cuda_card(device)
        if major < 8:
            raise SimCLRError(f"--precision bf16: {name} (compute capability {major}.{minor}) has no fast bf16 "
                              f"(it needs 8.0 or later); use --precision {gpu_precision(name, (major, minor))[0]} "
                              "(what auto picks here) or fp32")


def autocast_context(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """The autocast block of ``precision`` on ``device`` (nothing for fp32)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def to_host_async(x: torch.Tensor) -> torch.Tensor:
    """``x`` on the CPU. From CUDA the copy goes into pinned memory without blocking the host: its values
    may be read only after the next synchronisation with the device (a ``.tolist()`` of a tensor queued
    after it, ``torch.cuda.synchronize``, or an event's ``synchronize``)."""
    if x.device.type != "cuda":
        return x.cpu()
    out = torch.empty(x.shape, dtype=x.dtype, pin_memory=True)
    return out.copy_(x, non_blocking=True)


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
    "BF16_FLAGS", "PRECISIONS", "PRECISION_CACHE", "PRECISION_CHOICES", "autocast_context", "busy", "cache_dir",
    "cached_choice", "check_precision", "choose_precision", "cpu_flags", "cpu_model", "cuda_card", "gpu_precision",
    "machine_key", "measured_bf16_speedup", "pick_device", "prepare_device", "resolve_precision",
    "retain_freed_memory", "to_channels_last", "to_host_async",
]
